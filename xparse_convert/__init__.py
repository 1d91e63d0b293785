"""xparse-convert: stream TextIn xParse results into DOCX, XLSX, HTML, JSONL and Markdown."""
