"""DOCX and XLSX as a reader sees them: LibreOffice renders them to PDF (once, for every test
here) and pdftotext reads the pages back."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import openpyxl
import pytest
from conftest import SAMPLE

from xparse_convert import iter_tables

LIBREOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
REAL = os.path.join(os.path.dirname(__file__), "data", "real")
MEETING = os.path.join(REAL, "legacy-pdf2md-v3.6.0_parsex-sdk_15.json")  # the annual meeting
RESEARCH = os.path.join(REAL, "legacy-web_demo_ce729cfc_excerpt.json")  # rowspans, phone numbers
SOURCES = {"sample": SAMPLE, "meeting": MEETING, "research": RESEARCH}
# a number or date as a cell prints it: digits with separators, at least 4 characters
NUMBER = re.compile(r"\d[\d,.:/\-%]*\d%?")

pytestmark = pytest.mark.skipif(not LIBREOFFICE and not os.environ.get("CI"),
                                reason="no LibreOffice")


def cli(*args):
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """Every output of this module, rendered to PDF by one LibreOffice run: name -> (the
    office file, the PDF's text by page)."""
    assert LIBREOFFICE, "CI must have LibreOffice (installed by .ci/run)"
    out = tmp_path_factory.mktemp("render")
    files = {}
    for name, src in SOURCES.items():
        cli(src, "--to", "docx", "-o", str(out / f"{name}.docx"))
        files[name] = out / f"{name}.docx"
    cli(SAMPLE, "--to", "docx", "--docx-toc", "-o", str(out / "toc.docx"))
    files["toc"] = out / "toc.docx"
    for name in ("sample", "meeting"):
        cli(SOURCES[name], "--to", "xlsx", "-o", str(out / f"{name}-book.xlsx"))
        files[f"{name}-book"] = out / f"{name}-book.xlsx"
    proc = subprocess.run([LIBREOFFICE, "--headless", f"-env:UserInstallation=file://{out}/lo",
                           "--convert-to", "pdf", "--outdir", str(out / "pdf"),
                           *map(str, files.values())], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    pages = {}
    for name, path in files.items():
        text = subprocess.run(["pdftotext", "-layout", str(out / "pdf" / f"{path.stem}.pdf"),
                               "-"], capture_output=True, text=True, check=True).stdout
        flowing = subprocess.run(["pdftotext", str(out / "pdf" / f"{path.stem}.pdf"), "-"],
                                 capture_output=True, text=True, check=True).stdout
        pages[name] = (path, text.split("\f")[:-1], flowing)
    return pages


def cell_numbers(src):
    """Every number and date printed in a table cell of ``src`` (cells holding math are
    shown as formulas, not as their text)."""
    found = set()
    for table in iter_tables(src):
        for row in table.text_grid():
            for text in row:
                if text and "$" not in text:
                    found.update(t for t in NUMBER.findall(text) if len(t) >= 4)
    return found


@pytest.mark.parametrize("name", ["sample", "meeting", "research"])
def test_no_number_or_date_is_broken_across_lines(rendered, name):
    _, pages, _ = rendered[name]
    text = "\n".join(pages)
    numbers = cell_numbers(SOURCES[name])
    if name == "research":  # a phone number run into CJK text may break after its hyphen
        numbers = {n for n in numbers if "-" not in n}  # (Unicode allows it), never inside
    assert numbers
    assert sorted(n for n in numbers if n not in text) == []


def test_running_heads_print_on_every_page_with_its_number(rendered):
    _, pages, _ = rendered["meeting"]
    assert len(pages) >= 3
    for number, page in enumerate(pages, 1):
        lines = [line.strip() for line in page.splitlines() if line.strip()]
        assert "巨潮资讯" in lines[-2:]  # the running foot, from the source's Footer lines
        assert lines[-1] == str(number)  # its PAGE field, numbered from the source's "1"


def test_wide_tables_get_landscape_pages(rendered):
    import docx

    path, pages, _ = rendered["meeting"]
    sections = docx.Document(path).sections
    assert any(s.page_width > s.page_height for s in sections)
    assert all(round(min(s.page_width, s.page_height).cm, 1) == 21.0 for s in sections)  # A4
    rows = [line for page in pages for line in page.splitlines() if "7,231,930,633" in line]
    assert rows and all("34.3453%" in line or "99.9920%" in line or "74.3705%" in line
                        for line in rows)  # a merged row's figures on one printed line


def test_toc_shows_a_page_number_after_every_entry(rendered):
    _, pages, _ = rendered["toc"]
    titles = [" ".join(t.split()) for t in _titles(SAMPLE)]
    entries = [line.strip() for line in pages[0].splitlines() if "..." in line]
    assert len(entries) == len(titles)
    assert all(re.search(r"\.{3,}\s*\d+$", entry) for entry in entries)


def _titles(src):
    from xparse_convert import iter_elements

    return [e.text for e in iter_elements(src) if e.type == "Title"]


@pytest.mark.parametrize("name", ["sample-book", "meeting-book"])
def test_every_sheet_prints_one_page_wide(rendered, name):
    path, pages, _ = rendered[name]
    book = openpyxl.load_workbook(path)
    for ws in book.worksheets:
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0)
        assert ws.oddFooter.center.text == "Page &P of &N"
        assert ws.oddHeader.left.text == "&A"
    # each printed page carries its sheet's name on top: count pages per sheet
    per_sheet = {}
    for page in pages:
        top = next(line.strip() for line in page.splitlines() if line.strip())
        per_sheet[top] = per_sheet.get(top, 0) + 1
    assert set(per_sheet) == set(book.sheetnames)
    # one page wide: a sheet's pages are as many as its rows need, never more columns of pages
    for ws in book.worksheets:
        assert per_sheet[ws.title] <= max(1, ws.max_row // 30 + 1), ws.title
