"""What the command line's ``parse`` and ``fetch`` do with the API client: find the documents
to parse, refuse a run whose outputs would clash, submit and convert, fetch and convert.  A
downloaded result is kept even when converting it fails (it was paid for)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import targets
from ..convert import INPUT_FAILURES, Report, convert
from ..errors import UsageError, XParseError
from ..reader import Reader
from ..safe_names import safe_name
from ..targets import formats, mirrored, output_paths, output_suffixes
from .client import JOB_ID_RULE, Client, JobStatus, is_job_id, shown

DOCUMENT_SUFFIXES = frozenset({
    ".pdf", ".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".doc",
    ".docx", ".ppt", ".pptx", ".xls", ".xlsx", ".ofd", ".txt", ".html", ".htm",
})


def find_documents(inputs: list[str], out_dir: str | None = None
                   ) -> list[tuple[str, str | None]]:
    """Files and URLs to parse, each with the folder its outputs go to: folders expand to
    the documents below them, their subfolders mirrored under ``out_dir``."""
    found: list[tuple[str, str | None]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            for doc in sorted(path.rglob("*")):
                if doc.is_file() and doc.suffix.lower() in DOCUMENT_SUFFIXES:
                    folder = mirrored(doc, path, out_dir)
                    found.append((str(doc), str(folder) if folder is not None else None))
        else:
            found.append((item, out_dir))
    return found


def result_name(path: Path) -> str | None:
    """The stem of the source file a downloaded result names in its head, if any."""
    try:
        with Reader(path) as reader:
            return reader.info.title if reader.info.filename else None
    except XParseError:
        return None


def parse_and_convert(client: Client, document: str, to: list[str], out_dir: str | None,
                      options: dict[str, Any] | None = None, *,
                      config: dict[str, Any] | None = None, page_range: str | None = None,
                      password: str | None = None, webhook: str | None = None,
                      poll_timeout: float = 3600.0, poll_interval: float = 1.0,
                      on_submitted: Callable[[str, str], None] | None = None,
                      on_status: Callable[[JobStatus, float], None] | None = None,
                      taken: set[Path] | None = None, stem: str | None = None,
                      stdout: bool = False) -> Report:
    """Submit one document, wait, download ``<stem>.json`` (kept even if converting fails:
    it was paid for) and convert it; the conversion's ``Report`` (outputs include ``json``).
    ``poll_timeout`` bounds submitting and waiting together.  ``stem`` names the outputs (a
    file ``-o``: ``out.docx`` gives ``out.json`` beside it); else a local document's stem,
    else a URL's (its path's last part, else the job id), a remote value that ``safe_name``
    makes unique among ``taken`` (the names this run has claimed, as ``check_targets``
    returns them) and existing files.  ``stdout``: the one text format goes to standard
    output, the result where it would go without ``out_dir``.
    """
    started = client.clock()
    is_url = "://" in document
    job_id = client.submit(None if is_url else document, file_url=document if is_url else None,
                           config=config, page_range=page_range, password=password,
                           webhook=webhook, timeout=poll_timeout)
    if on_submitted is not None:
        on_submitted(document, job_id)
    url = client.wait(job_id, poll_timeout=poll_timeout, on_status=on_status,
                      first_delay=poll_interval, started=started)
    folder = output_folder(document, out_dir)
    if stem is None:
        stem = safe_name(_url_stem(document), folder, taken, suffixes=_target_suffixes(to),
                         fallback=job_id) if is_url else Path(document).stem
    result = client.download(url, folder / f"{stem}.json")
    return _convert_result(client, result, to, folder, options, stdout)


def output_folder(document: str, out_dir: str | None) -> Path:
    """Where a parsed document's result and outputs go: ``out_dir``, else beside the
    document (a URL: the current folder)."""
    return targets.output_folder(None if "://" in document else Path(document), out_dir)


def _url_stem(url: str) -> str:
    """The file stem a URL's path names (percent-decoded), or ``""``."""
    return PurePosixPath(unquote(urlsplit(url).path)).stem


def _target_suffixes(to: list[str]) -> list[str]:
    """What follows a stem in the files a parse writes: ``.json``, each output, pictures."""
    return [".json", *output_suffixes(formats(to))]


def check_targets(documents: list[tuple[str, str | None]], to: list[str],
                  stem: str | None = None) -> set[Path]:
    """Refuse, before anything is submitted, a run whose outputs would overwrite one of its
    documents or each other (``a.pdf`` and ``a.png`` both give ``a.json``).  ``stem``
    names every document's outputs (a file ``-o``, which takes one document).  Returns the
    stems the local documents claim (``folder/stem``, resolved), so that names made from
    URLs avoid them; those names are made unique as their jobs end."""
    writers = formats(to)
    inputs = {Path(d).resolve() for d, _ in documents if "://" not in d}
    seen: dict[Path, str] = {}
    claimed: set[Path] = set()
    for document, out_dir in documents:
        if "://" in document and stem is None:
            continue
        named = stem or Path(document).stem
        folder = output_folder(document, out_dir)
        claimed.add(folder.resolve() / named)
        targets = [folder / f"{named}.json", *output_paths(named, folder, writers).values()]
        for target in targets:
            resolved = target.resolve()
            if resolved in inputs:
                raise XParseError(f"{document}: converting it would overwrite the document "
                                  f"{target}; choose another folder with -o")
            if resolved in seen and seen[resolved] != document:
                raise XParseError(f"{document} and {seen[resolved]} would both write {target}; "
                                  "convert them separately or rename one")
            seen[resolved] = document
    return claimed


def _convert_result(client: Client, result: Path, to: list[str], folder: Path,
                    options: dict[str, Any] | None, stdout: bool = False) -> Report:
    """Convert a downloaded result; a failure is a report (the result file stays).  The
    client's cancel event stops the conversion between reads (``Cancelled``; its temporary
    files are removed, the result stays)."""
    def progress(_consumed: int) -> None:
        client.check_cancelled()

    try:
        report = convert(result, to, folder, options, stdout=stdout,
                         progress=progress if client.cancel is not None else None)
    except INPUT_FAILURES as exc:
        report = Report.failed(str(result), exc)
    report.outputs["json"] = str(result)
    return report


def fetch_and_convert(client: Client, job_id: str, to: list[str], out_dir: str | None,
                      options: dict[str, Any] | None = None, *, name: str | None = None,
                      poll_timeout: float = 3600.0, poll_interval: float = 1.0,
                      on_status: Callable[[JobStatus, float], None] | None = None,
                      taken: set[Path] | None = None, stdout: bool = False) -> Report:
    """Resume a job: wait if it is still running, download, convert.  Outputs are named
    from ``name`` (``--name``, or a file ``-o``'s stem), else the result's
    ``metadata.filename``, else the job id; the last two through ``safe_name`` (unique among
    ``taken`` and existing files).  ``stdout``: as for ``parse_and_convert``."""
    if not is_job_id(job_id):
        raise UsageError(f"{shown(job_id)} is not a job id ({JOB_ID_RULE})")
    started = client.clock()
    state = client.status(job_id, deadline=started + poll_timeout,
                          late=f"job {job_id}: no status within {poll_timeout:g} s")
    url = state.result_url if state.status == "completed" and state.result_url else \
        client.wait(job_id, poll_timeout=poll_timeout, on_status=on_status,
                    first_delay=poll_interval, started=started)
    folder = targets.output_folder(None, out_dir)
    suffixes = _target_suffixes(to)
    stem = name or safe_name(job_id, folder, taken, suffixes=suffixes)
    result = client.download(url, folder / f"{stem}.json")
    if not name:
        found = result_name(result)
        if found and found != stem:
            renamed = result.with_name(f"{safe_name(found, folder, taken, suffixes=suffixes)}"
                                       ".json")
            os.replace(result, renamed)  # safe_name chose a name no file has
            result = renamed
    return _convert_result(client, result, to, folder, options, stdout)
