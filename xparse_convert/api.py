"""A client for TextIn's async parse API: submit a document, wait for the job, download the
result.  Needs the ``api`` extra (``pip install 'xparse-convert[api]'``, for httpx).

Credentials go only to the API host, never to the host of a ``result_url``, and never into
messages, reports or logs.  Retries (rate limits, service faults, network errors) back off
exponentially with jitter through an injectable clock, so tests run in milliseconds.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .codes import PARTIAL, RETRYABLE_CODES, SUCCESS, describe
from .errors import ApiError, XParseError

DEFAULT_BASE_URL = "https://api.textin.com"
SUBMIT_PATH = "/api/v1/xparse/parse/async"
STATUS_PATH = "/api/v1/xparse/parse/async/{job_id}"
WAITING = ("pending", "in_progress")


class NetworkError(XParseError):
    """The API could not be reached, or the connection broke, after every retry."""


@dataclass
class Backoff:
    """Exponential backoff with full jitter; ``sleep`` and ``rng`` are injectable."""

    first: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int) -> float:
        return self.rng.uniform(0, min(self.cap, self.first * self.factor ** attempt))

    def wait(self, attempt: int) -> None:
        self.sleep(self.delay(attempt))


@dataclass
class JobStatus:
    job_id: str
    status: str
    result_url: str | None = None
    message: str | None = None


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise XParseError("the API client needs httpx: pip install 'xparse-convert[api]'"
                          ) from None
    return httpx


class Client:
    """TextIn async parse API.

    ``submit`` returns a job id, ``wait`` polls until the job ends and returns its
    ``result_url``, ``download`` streams the result to a file (atomically, checked), ``parse``
    does all three.  Errors are ``ApiError`` (with ``.code``) or ``NetworkError``.
    """

    def __init__(self, app_id: str, secret_code: str, base_url: str = DEFAULT_BASE_URL, *,
                 retries: int = 5, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 60.0,
                 transport: Any = None) -> None:
        if not app_id or not secret_code:
            raise ApiError("credentials missing: give --app-id/--secret-code or set "
                           "XPARSE_APP_ID and XPARSE_SECRET_CODE", code=40101)
        httpx = _httpx()
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._api_origin = (parts.scheme.lower(), parts.netloc.lower())
        self._auth = {"x-ti-app-id": app_id, "x-ti-secret-code": secret_code}
        self.retries = retries
        self.backoff = backoff or Backoff()
        self.clock = clock
        self._http = httpx.Client(timeout=httpx.Timeout(timeout, connect=15.0),
                                  transport=transport, follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:  # never show the credentials
        return f"Client(base_url={self.base_url!r})"

    # -- requests --------------------------------------------------------------------
    def _headers_for(self, url: str) -> dict[str, str]:
        """Credentials for the API's own origin only (scheme and host): a result URL may live
        elsewhere, or be plain http where the API is https."""
        parts = urlsplit(url)
        same = (parts.scheme.lower(), parts.netloc.lower()) == self._api_origin
        return dict(self._auth) if same else {}

    def _call(self, method: str, path: str, what: str,
              files: Callable[[], dict[str, Any]] | None = None) -> dict[str, Any]:
        """One API request with retries; the ``data`` of a successful envelope.  ``files``
        makes the multipart fields afresh for each attempt (a file handle is read once)."""
        httpx = _httpx()
        url = self.base_url + path
        attempt = 0
        while True:
            try:
                response = self._http.request(method, url, headers=self._headers_for(url),
                                              files=files() if files else None)
                body = response.json() if response.content else {}
            except (httpx.TransportError, ValueError) as exc:
                error: XParseError = NetworkError(f"{what}: {type(exc).__name__}: {exc}")
                retryable = True
            else:
                code = body.get("code") if isinstance(body, dict) else None
                if response.status_code >= 500 and code is None:
                    code = 500
                if code in (SUCCESS, PARTIAL) and response.status_code < 400:
                    data = body.get("data")
                    return data if isinstance(data, dict) else {}
                error = api_error(code, body if isinstance(body, dict) else {}, what,
                                  response.status_code)
                retryable = code in RETRYABLE_CODES
            if not retryable or attempt >= self.retries:
                raise error
            self.backoff.wait(attempt)
            attempt += 1

    def submit(self, document: str | os.PathLike | None = None, *, file_url: str | None = None,
               config: dict[str, Any] | None = None, page_range: str | None = None,
               password: str | None = None, webhook: str | None = None) -> str:
        """Start a parse job for a local file (streamed) or a ``file_url``; its job id."""
        if (document is None) == (file_url is None):
            raise XParseError("give a document path or a file_url, not both or neither")
        config = json.loads(json.dumps(config or {}))  # a copy we may add to
        if page_range:
            config.setdefault("scope", {})["page_range"] = page_range
        if password:
            config.setdefault("document", {})["password"] = password
        fields: dict[str, Any] = {"config": (None, json.dumps(config, ensure_ascii=False),
                                             "application/json")}
        if webhook:
            fields["webhook"] = (None, webhook)
        if file_url:
            fields["file_url"] = (None, file_url)
        opened: list[Any] = []

        def parts() -> dict[str, Any]:
            for handle in opened:
                handle.close()
            opened.clear()
            out = dict(fields)
            if document is not None:
                handle = open(document, "rb")  # streamed by httpx, never read whole
                opened.append(handle)
                out["file"] = (Path(document).name, handle, "application/octet-stream")
            return out

        what = f"submitting {Path(document).name if document else file_url}"
        try:
            data = self._call("POST", SUBMIT_PATH, what, files=parts)
        finally:
            for handle in opened:
                handle.close()
        job_id = data.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise ApiError(f"{what}: the API answered without a job id", code=None)
        return job_id

    def status(self, job_id: str) -> JobStatus:
        data = self._call("GET", STATUS_PATH.format(job_id=job_id), f"job {job_id}")
        return JobStatus(job_id, str(data.get("status", "")), data.get("result_url"),
                         data.get("message"))

    def wait(self, job_id: str, *, poll_timeout: float = 3600.0,
             on_status: Callable[[JobStatus, float], None] | None = None,
             first_delay: float = 1.0, max_delay: float = 15.0) -> str:
        """Poll until the job ends; its ``result_url``.  ``ApiError`` when it failed or ended
        otherwise, ``TimeoutError`` after ``poll_timeout`` seconds."""
        started = self.clock()
        delay = first_delay
        while True:
            state = self.status(job_id)
            elapsed = self.clock() - started
            if on_status is not None:
                on_status(state, elapsed)
            if state.status == "completed":
                if not state.result_url:
                    raise ApiError(f"job {job_id} completed without a result_url", code=None)
                return state.result_url
            if state.status == "failed":
                raise ApiError(f"job {job_id} failed: {state.message or 'no reason given'}",
                               code=None)
            if state.status not in WAITING:
                raise ApiError(f"job {job_id} ended with status {state.status!r}", code=None)
            if elapsed >= poll_timeout:
                raise TimeoutError(f"job {job_id} still {state.status} after "
                                   f"{poll_timeout:g} s; fetch it later with "
                                   f"'xparse-convert fetch {job_id}'")
            pause = min(delay, max(poll_timeout - elapsed, 0.0))
            self.backoff.sleep(self.backoff.rng.uniform(pause / 2, pause))
            delay = min(delay * 1.5, max_delay)

    def download(self, job_or_url: str, path: str | os.PathLike) -> Path:
        """Stream a job's result (a job id, or its ``result_url``) to ``path``: written to a
        temporary file, checked against Content-Length and for well-formed JSON, then renamed
        into place.  A broken download leaves nothing at ``path``."""
        httpx = _httpx()
        url = job_or_url if "://" in job_or_url else self._result_url(job_or_url)
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        attempt = 0
        while True:
            fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                             dir=target.parent)
            temp = Path(temp_name)
            try:
                with os.fdopen(fd, "wb") as out, self._http.stream(
                        "GET", url, headers=self._headers_for(url)) as response:
                    if response.status_code != 200:
                        raise ApiError(f"downloading the result: HTTP {response.status_code}",
                                       code=response.status_code)
                    expected = response.headers.get("content-length")
                    for chunk in response.iter_bytes(1 << 20):
                        out.write(chunk)
                    # Content-Length counts the bytes on the wire (compressed, if so)
                    received = response.num_bytes_downloaded
                    if expected is not None and expected.isdigit() and received != int(expected):
                        raise NetworkError(f"downloading the result: got {received} of "
                                           f"{expected} bytes")
                check_json(temp)
                os.replace(temp, target)
                return target
            except (httpx.TransportError, NetworkError) as exc:
                temp.unlink(missing_ok=True)
                if attempt >= self.retries:
                    if isinstance(exc, NetworkError):
                        raise
                    raise NetworkError(f"downloading the result: {type(exc).__name__}: {exc}"
                                       ) from None
                self.backoff.wait(attempt)
                attempt += 1
            except BaseException:
                temp.unlink(missing_ok=True)
                raise

    def _result_url(self, job_id: str) -> str:
        state = self.status(job_id)
        if state.status != "completed" or not state.result_url:
            return self.wait(job_id)
        return state.result_url


def check_json(path: Path) -> None:
    """Raise ``NetworkError`` unless ``path`` holds one complete JSON document (streaming)."""
    import ijson

    try:
        with path.open("rb") as handle:
            for _ in ijson.basic_parse(handle, buf_size=1 << 20):
                pass
    except (ijson.JSONError, UnicodeDecodeError) as exc:
        raise NetworkError(f"the downloaded result is not complete JSON ({exc})".split("\n")[0]
                           ) from None


def api_error(code: Any, body: dict[str, Any], what: str, http_status: int) -> ApiError:
    """A one-line error for an API answer, in the user's terms."""
    if code is None:
        return ApiError(f"{what}: HTTP {http_status} without an API status", code=http_status)
    data = body.get("data")
    detail = data.get("message") if isinstance(data, dict) else None
    server = body.get("message")
    text = f"{what}: code {code}: {describe(code)}"
    extra = "; ".join(str(x) for x in (server, detail) if x)
    if extra:
        text += f" (server said: {extra})"
    return ApiError(text, code=code)


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
                    folder = str(Path(out_dir) / doc.parent.relative_to(path)) if out_dir \
                        else None
                    found.append((str(doc), folder))
        else:
            found.append((item, out_dir))
    return found


def result_name(path: Path) -> str | None:
    """The stem of the source file a downloaded result names in its head, if any."""
    from .reader import Reader

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
                      on_status: Callable[[JobStatus, float], None] | None = None) -> Any:
    """Submit one document, wait, download ``<stem>.json`` (kept even if converting fails:
    it was paid for) and convert it; the conversion's ``Report`` (outputs include ``json``).
    """
    is_url = "://" in document
    stem = Path(urlsplit(document).path if is_url else document).stem
    job_id = client.submit(None if is_url else document, file_url=document if is_url else None,
                           config=config, page_range=page_range, password=password,
                           webhook=webhook)
    if on_submitted is not None:
        on_submitted(document, job_id)
    url = client.wait(job_id, poll_timeout=poll_timeout, on_status=on_status,
                      first_delay=poll_interval)
    folder = Path(out_dir) if out_dir else (Path(document).parent if not is_url else Path.cwd())
    result = client.download(url, folder / f"{stem or job_id}.json")
    return _convert_result(result, to, folder, options)


def check_targets(documents: list[tuple[str, str | None]], to: list[str]) -> None:
    """Refuse, before anything is submitted, a run whose outputs would overwrite one of its
    documents or each other (``a.pdf`` and ``a.png`` both give ``a.json``)."""
    from .convert import formats, output_paths

    writers = formats(to)
    inputs = {Path(d).resolve() for d, _ in documents if "://" not in d}
    seen: dict[Path, str] = {}
    for document, out_dir in documents:
        is_url = "://" in document
        stem = Path(urlsplit(document).path if is_url else document).stem
        folder = Path(out_dir) if out_dir else (
            Path(document).parent if not is_url else Path.cwd())
        targets = [folder / f"{stem}.json", *output_paths(stem, folder, writers).values()]
        for target in targets:
            resolved = target.resolve()
            if resolved in inputs:
                raise XParseError(f"{document}: converting it would overwrite the document "
                                  f"{target}; choose another folder with -o")
            if resolved in seen and seen[resolved] != document:
                raise XParseError(f"{document} and {seen[resolved]} would both write {target}; "
                                  "convert them separately or rename one")
            seen[resolved] = document


def _convert_result(result: Path, to: list[str], folder: Path, options: dict[str, Any] | None
                    ) -> Any:
    """Convert a downloaded result; a failure is a report (the result file stays)."""
    from .convert import Report, convert

    try:
        report = convert(result, to, folder, options)
    except XParseError as exc:
        report = Report(source=str(result), error=exc.message, error_where=exc.where)
    report.outputs["json"] = str(result)
    return report


def fetch_and_convert(client: Client, job_id: str, to: list[str], out_dir: str | None,
                      options: dict[str, Any] | None = None, *, name: str | None = None,
                      poll_timeout: float = 3600.0, poll_interval: float = 1.0,
                      on_status: Callable[[JobStatus, float], None] | None = None) -> Any:
    """Resume a job: wait if it is still running, download, convert.  Outputs are named
    from ``name``, else the result's ``metadata.filename``, else the job id."""
    state = client.status(job_id)
    url = state.result_url if state.status == "completed" and state.result_url else \
        client.wait(job_id, poll_timeout=poll_timeout, on_status=on_status,
                    first_delay=poll_interval)
    folder = Path(out_dir) if out_dir else Path.cwd()
    result = client.download(url, folder / f"{name or job_id}.json")
    if not name:
        found = result_name(result)
        renamed = result.with_name(f"{found}.json") if found else result
        if found and found != job_id and not renamed.exists():
            os.replace(result, renamed)  # never over a file that is already there
            result = renamed
    return _convert_result(result, to, folder, options)
