"""A client for TextIn's async parse API: submit a document, wait for the job, download the
result.  Needs the ``api`` extra (``pip install 'xparse-convert[api]'``, for httpx).

Credentials go only to the API host, never to the host of a ``result_url``, and never into
messages, reports or logs.  Retries (rate limits, service faults, network errors) back off
exponentially with jitter through an injectable clock, so tests run in milliseconds.

Everything the server sends is bounded: each status request has an overall deadline, answers
are capped in size, submit and polling together end by the poll timeout, and a download ends
at its size limit or after a stall.  Job ids must be plain names and file names made from
remote values go through ``safe_names``.  A ``cancel`` event set from another thread (the
command line's Ctrl-C) ends a client's work soon, at the next sleep, chunk or read.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from ..codes import PARTIAL, RETRYABLE_CODES, SUCCESS, describe
from ..errors import ApiError, UsageError, XParseError
from ..options import LIMITS
from ..output import AtomicFile

DEFAULT_BASE_URL = "https://api.textin.com"
SUBMIT_PATH = "/api/v1/xparse/parse/async"
STATUS_PATH = "/api/v1/xparse/parse/async/{job_id}"
WAITING = ("pending", "in_progress")
# A job id goes into request paths and file names: only plain names are accepted.
JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
JOB_ID_RULE = "1 to 128 letters, digits, _ or -"
MAX_ANSWER_BYTES = 4 << 20  # an API answer is a few hundred bytes; a result comes as a download
DEFAULT_MAX_DOWNLOAD_MB: int = next(o.default for o in LIMITS if o.name == "max_download_mb")


class NetworkError(XParseError):
    """The API could not be reached, or the connection broke, after every retry."""


class TooLarge(XParseError):
    """An API answer or a download is over its size limit (never retried)."""


class Cancelled(Exception):
    """The client's ``cancel`` event was set: the work stopped where it was (a download's or
    a conversion's temporary files are removed; a downloaded result is kept)."""


class _Upload(io.FileIO):
    """A document being uploaded, read in chunks by httpx: each read first checks the
    cancel event, so a large upload stops within a chunk of Ctrl-C."""

    def __init__(self, path: str | os.PathLike, cancel: threading.Event | None) -> None:
        super().__init__(path, "rb")
        self._cancel = cancel

    def read(self, size: int = -1) -> bytes:
        if self._cancel is not None and self._cancel.is_set():
            raise Cancelled("cancelled")
        return super().read(size)


def is_job_id(value: object) -> bool:
    """Whether ``value`` is a job id we send in a request path and may name a file after."""
    return isinstance(value, str) and JOB_ID.fullmatch(value) is not None


def shown(value: object, limit: int = 80) -> str:
    """A remote value for a message: ``repr`` escapes controls and bidi characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


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


class _DeadlineBackend:
    """httpcore's network backend with a deadline per thread: every connect, read and write of
    a request waits at most until that request's deadline (``time.monotonic()``).  httpx's own
    timeouts bound each read alone, so without this a server sending one byte every few
    seconds (in the headers or the body) holds a request open as long as it likes."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._local = threading.local()

    @contextmanager
    def until(self, deadline: float | None) -> Iterator[None]:
        previous = getattr(self._local, "deadline", None)
        self._local.deadline = deadline
        try:
            yield
        finally:
            self._local.deadline = previous

    def clamp(self, timeout: float | None, error: str) -> float | None:
        deadline = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            import httpcore

            raise getattr(httpcore, error)("the request ran past its deadline")
        return remaining if timeout is None else min(timeout, remaining)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None, socket_options: Any = None) -> Any:
        return _DeadlineStream(self._inner.connect_tcp(
            host, port, self.clamp(timeout, "ConnectTimeout"), local_address, socket_options),
            self)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Any = None) -> Any:
        return _DeadlineStream(self._inner.connect_unix_socket(
            path, self.clamp(timeout, "ConnectTimeout"), socket_options), self)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineStream:
    """A network stream whose every operation obeys its backend's current deadline."""

    def __init__(self, inner: Any, backend: _DeadlineBackend) -> None:
        self._inner = inner
        self._backend = backend

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._backend.clamp(timeout, "ReadTimeout"))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._backend.clamp(timeout, "WriteTimeout"))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> Any:
        return _DeadlineStream(self._inner.start_tls(
            ssl_context, server_hostname, self._backend.clamp(timeout, "ConnectTimeout")),
            self._backend)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class Client:
    """TextIn async parse API.

    ``submit`` returns a job id, ``wait`` polls until the job ends and returns its
    ``result_url``, ``download`` streams the result to a file (atomically, checked), ``parse``
    does all three.  Errors are ``ApiError`` (with ``.code``), ``NetworkError``, ``TooLarge``
    or ``TimeoutError``.

    Bounds: ``timeout`` for each read or write of an API request, ``status_timeout`` for a
    whole status request (retries aside), ``max_answer_bytes`` for an API answer;
    ``stall_timeout`` (no byte for that long) and ``max_download_mb`` for a download.
    ``cancel``: once set (from any thread), sleeps end and transfers stop at their next
    chunk with ``Cancelled``; a read the server never answers still waits its timeout.
    """

    def __init__(self, app_id: str, secret_code: str, base_url: str = DEFAULT_BASE_URL, *,
                 retries: int = 5, backoff: Backoff | None = None,
                 clock: Callable[[], float] = time.monotonic, timeout: float = 60.0,
                 transport: Any = None, status_timeout: float = 60.0,
                 max_answer_bytes: int = MAX_ANSWER_BYTES, stall_timeout: float = 60.0,
                 max_download_mb: int | None = None,
                 cancel: threading.Event | None = None) -> None:
        if not app_id or not secret_code:
            raise ApiError("credentials missing: give --app-id/--secret-code or set "
                           "XPARSE_APP_ID and XPARSE_SECRET_CODE", code=40101)
        httpx = _httpx()
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(self.base_url)
        self._api_origin = (parts.scheme.lower(), parts.netloc.lower())
        self._auth = {"x-ti-app-id": app_id, "x-ti-secret-code": secret_code}
        self.retries = retries
        self.cancel = cancel
        self.backoff = backoff or Backoff(sleep=self._pause)
        self.clock = clock
        self.timeout = timeout
        self.status_timeout = status_timeout
        self.max_answer_bytes = max_answer_bytes
        self.stall_timeout = stall_timeout
        self.max_download_mb = max_download_mb or DEFAULT_MAX_DOWNLOAD_MB
        self._deadlines: _DeadlineBackend | None = None
        if transport is None:
            transport = httpx.HTTPTransport()
            # httpx has no public way to hand httpcore a network backend; its transport's
            # connection pool creates every connection through this attribute
            self._deadlines = _DeadlineBackend(transport._pool._network_backend)
            transport._pool._network_backend = self._deadlines
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

    def check_cancelled(self) -> None:
        """Raise ``Cancelled`` if the ``cancel`` event is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")

    def _pause(self, seconds: float) -> None:
        """The default backoff's sleep: ended at once by the cancel event."""
        if self.cancel is None:
            time.sleep(seconds)
        elif self.cancel.wait(seconds):
            raise Cancelled("cancelled")

    def _sleep(self, seconds: float) -> None:
        self.backoff.sleep(seconds)
        self.check_cancelled()  # an injected sleep does not know the event

    # -- requests --------------------------------------------------------------------
    def _headers_for(self, url: str) -> dict[str, str]:
        """Credentials for the API's own origin only (scheme and host): a result URL may live
        elsewhere, or be plain http where the API is https."""
        parts = urlsplit(url)
        same = (parts.scheme.lower(), parts.netloc.lower()) == self._api_origin
        return dict(self._auth) if same else {}

    @contextmanager
    def _until(self, deadline: float | None) -> Iterator[None]:
        if self._deadlines is None:  # a transport of the caller's: checked between chunks
            yield
        else:
            with self._deadlines.until(deadline):
                yield

    def _call(self, method: str, path: str, what: str,
              files: Callable[[], dict[str, Any]] | None = None, *,
              deadline: float | None = None, attempt_timeout: float | None = None,
              late: str = "") -> dict[str, Any]:
        """One API request with retries; the ``data`` of a successful envelope.  ``files``
        makes the multipart fields afresh for each attempt (a file handle is read once).
        ``attempt_timeout`` bounds each attempt, ``deadline`` (on ``clock``) all of them:
        an attempt it cuts short raises ``TimeoutError(late)``."""
        httpx = _httpx()
        url = self.base_url + path
        attempt = 0
        while True:
            self.check_cancelled()
            seconds = attempt_timeout
            cut_by_deadline = False
            if deadline is not None:
                left = deadline - self.clock()
                if left <= 0:
                    raise TimeoutError(late)
                cut_by_deadline = seconds is None or left <= seconds
                seconds = left if cut_by_deadline else seconds
            try:
                status_code, raw = self._answer(method, url, what, files() if files else None,
                                                seconds)
                body = json.loads(raw) if raw else {}
            except (httpx.TransportError, ValueError) as exc:
                if deadline is not None and (self.clock() >= deadline or (
                        cut_by_deadline and isinstance(exc, httpx.TimeoutException))):
                    raise TimeoutError(late) from None
                error: XParseError = NetworkError(f"{what}: {type(exc).__name__}: {exc}")
                retryable = True
            else:
                code = body.get("code") if isinstance(body, dict) else None
                if status_code >= 500 and code is None:
                    code = 500
                if code in (SUCCESS, PARTIAL) and status_code < 400:
                    data = body.get("data")
                    return data if isinstance(data, dict) else {}
                error = api_error(code, body if isinstance(body, dict) else {}, what,
                                  status_code)
                retryable = code in RETRYABLE_CODES
            if not retryable or attempt >= self.retries:
                raise error
            pause = self.backoff.delay(attempt)
            if deadline is not None and self.clock() + pause >= deadline:
                raise error  # no time left for another attempt: what went wrong is the news
            self._sleep(pause)
            attempt += 1

    def _answer(self, method: str, url: str, what: str, files: dict[str, Any] | None,
                seconds: float | None) -> tuple[int, bytes]:
        """One attempt: the HTTP status and the body, read within ``seconds`` overall and
        refused beyond ``max_answer_bytes`` (``TooLarge``)."""
        httpx = _httpx()
        timeout = httpx.Timeout(self.timeout, connect=15.0) if seconds is None else \
            httpx.Timeout(min(self.timeout, seconds), connect=min(15.0, seconds))
        ends = None if seconds is None else time.monotonic() + seconds
        cap = self.max_answer_bytes
        too_large = TooLarge(f"{what}: the API's answer is over {cap / (1 << 20):g} MB; "
                             "refused")
        with self._until(ends), self._http.stream(
                method, url, headers=self._headers_for(url), files=files,
                timeout=timeout) as response:
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise too_large
            body = bytearray()
            for chunk in response.iter_bytes():
                self.check_cancelled()
                body += chunk
                if len(body) > cap:
                    raise too_large
                if ends is not None and time.monotonic() > ends:
                    raise httpx.ReadTimeout("the request ran past its deadline")
            return response.status_code, bytes(body)

    def submit(self, document: str | os.PathLike | None = None, *, file_url: str | None = None,
               config: dict[str, Any] | None = None, page_range: str | None = None,
               password: str | None = None, webhook: str | None = None,
               timeout: float = 3600.0) -> str:
        """Start a parse job for a local file (streamed) or a ``file_url``; its job id.
        ``TimeoutError`` when no job id came within ``timeout`` seconds, retries included."""
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
                handle = _Upload(document, self.cancel)  # streamed by httpx, never whole
                opened.append(handle)
                out["file"] = (Path(document).name, handle, "application/octet-stream")
            return out

        what = f"submitting {Path(document).name if document else file_url}"
        try:
            data = self._call("POST", SUBMIT_PATH, what, files=parts,
                              deadline=self.clock() + timeout,
                              late=f"{what}: no job id within {timeout:g} s (--poll-timeout)")
        finally:
            for handle in opened:
                handle.close()
        job_id = data.get("job_id")
        if job_id is None or job_id == "":
            raise ApiError(f"{what}: the API answered without a job id", code=None)
        if not is_job_id(job_id):
            raise ApiError(f"{what}: the API answered with the job id {shown(job_id)}, not "
                           f"{JOB_ID_RULE}; refused", code=None)
        return job_id

    def status(self, job_id: str, *, deadline: float | None = None, late: str = ""
               ) -> JobStatus:
        """The job's state, in one request of at most ``status_timeout`` seconds (and none
        past ``deadline``, on ``clock``: then ``TimeoutError(late)``), retries aside."""
        if not is_job_id(job_id):
            raise UsageError(f"{shown(job_id)} is not a job id ({JOB_ID_RULE})")
        what = f"job {job_id}"
        data = self._call("GET", STATUS_PATH.format(job_id=quote(job_id, safe="")), what,
                          deadline=deadline, attempt_timeout=self.status_timeout,
                          late=late or f"{what}: no answer in time")
        url = data.get("result_url")
        if url is not None and not isinstance(url, str):
            raise ApiError(f"{what}: the API's result_url is {type(url).__name__}, not a "
                           "string; refused", code=None)
        message = data.get("message")
        return JobStatus(job_id, str(data.get("status", "")), url,
                         None if message is None else str(message))

    def wait(self, job_id: str, *, poll_timeout: float = 3600.0,
             on_status: Callable[[JobStatus, float], None] | None = None,
             first_delay: float = 1.0, max_delay: float = 15.0,
             started: float | None = None) -> str:
        """Poll until the job ends; its ``result_url``.  ``ApiError`` when it failed or ended
        otherwise, ``TimeoutError`` once ``poll_timeout`` seconds have passed since
        ``started`` (on ``clock``; default now: ``parse`` passes the time it submitted, so
        one timeout bounds submit and polling together), status requests included."""
        started = self.clock() if started is None else started
        hint = f"fetch it later with 'xparse-convert fetch {job_id}'"
        late = f"job {job_id}: no status within {poll_timeout:g} s; {hint}"
        delay = first_delay
        while True:
            state = self.status(job_id, deadline=started + poll_timeout, late=late)
            late = f"job {job_id} still {state.status} after {poll_timeout:g} s; {hint}"
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
                raise TimeoutError(late)
            remaining = poll_timeout - elapsed
            if remaining <= delay:
                # no time for another poll and its request: wait the time out, then give up
                self._sleep(remaining)
                raise TimeoutError(late)
            self._sleep(self.backoff.rng.uniform(delay / 2, delay))
            delay = min(delay * 1.5, max_delay)

    def download(self, job_or_url: str, path: str | os.PathLike) -> Path:
        """Stream a job's result (a job id, or its ``result_url``) to ``path`` through
        ``output.AtomicFile`` (the mode of any new file), checked against Content-Length and
        for well-formed JSON before it is renamed into place.  A broken download leaves
        nothing at ``path``; so does one over ``max_download_mb`` (``TooLarge``), one that
        sends no byte for ``stall_timeout`` seconds (retried like a dropped connection), or
        one cancelled."""
        httpx = _httpx()
        url = job_or_url if "://" in job_or_url else self._result_url(job_or_url)
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise ApiError(f"the result_url {shown(url)} is not an http(s) URL; refused",
                           code=None)
        cap = self.max_download_mb << 20
        too_large = TooLarge(f"downloading the result: over the {self.max_download_mb} MB "
                             "limit (--max-download-mb); nothing kept")
        # httpx's read timeout is the time without a byte: the stall timeout
        timeout = httpx.Timeout(self.stall_timeout, connect=min(15.0, self.stall_timeout))
        target = Path(path)
        attempt = 0
        while True:
            self.check_cancelled()
            try:
                # anything raised inside the block removes the temporary file
                with AtomicFile(target) as out, self._http.stream(
                        "GET", url, headers=self._headers_for(url),
                        timeout=timeout) as response:
                    if response.status_code != 200:
                        raise ApiError(f"downloading the result: HTTP {response.status_code}",
                                       code=response.status_code)
                    expected = response.headers.get("content-length")
                    if expected is not None and expected.isdigit() and int(expected) > cap:
                        raise too_large
                    written = 0
                    for chunk in response.iter_bytes(1 << 20):
                        self.check_cancelled()
                        written += len(chunk)
                        if written > cap:
                            raise too_large
                        out.write(chunk)
                    # Content-Length counts the bytes on the wire (compressed, if so)
                    received = response.num_bytes_downloaded
                    if expected is not None and expected.isdigit() and received != int(expected):
                        raise NetworkError(f"downloading the result: got {received} of "
                                           f"{expected} bytes")
                    out.close()
                    check_json(out.temp)
                return target
            except (httpx.TransportError, NetworkError) as exc:
                if attempt >= self.retries:
                    if isinstance(exc, NetworkError):
                        raise
                    raise NetworkError(f"downloading the result: {type(exc).__name__}: {exc}"
                                       ) from None
                self._sleep(self.backoff.delay(attempt))
                attempt += 1

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
