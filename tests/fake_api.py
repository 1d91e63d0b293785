"""A local stand-in for TextIn's async parse API, following its documented contract
(``parse-async-api.md``, ``parse-async-status.md``): it checks the credential headers and the
multipart form, hands out job ids, moves jobs through pending -> in_progress -> completed, and
serves results from a second host.  Attributes make it misbehave on purpose: drip an answer
a byte at a time, send an endless answer or download, stall a download, hand out hostile job
ids or result URLs.  Every misbehaviour ends by itself (``BOUND_SECONDS``, ``ENDLESS_BYTES``)
or when the client hangs up or the server closes: a test server never runs on alone."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

APP_ID, SECRET = "test-app-id", "s3cr3t-code-never-printed"
BOUND_SECONDS = 20.0  # no misbehaving answer goes on longer than this
ENDLESS_BYTES = 1 << 30  # nor sends more than this
_DEFAULT = object()


@dataclass
class Job:
    job_id: str
    fields: dict[str, Any]
    polls: int = 0


@dataclass
class Behaviour:
    submit_codes: list[int] = field(default_factory=list)  # answered to the first submits
    polls_before_done: int = 2
    final_status: str = "completed"
    final_status_of: dict[str, str] = field(default_factory=dict)  # job id -> its own
    fail_message: str = "the document could not be parsed"
    result: bytes = b""
    download: str = "ok"  # ok | truncated | short | drop | endless | stall
    download_failures: int = 10**9  # how many downloads misbehave before one is served well
    answer: str = "ok"  # ok | drip | endless: how the API answers (status line to body)
    answer_to: str = "status"  # status | submit: which requests get that answer
    drip_interval: float = 0.5  # seconds between the bytes of a dripped answer
    job_id: str | None = None  # the job id handed out (default job0001, job0002, ...)
    result_url: Any = _DEFAULT  # the result_url of a completed job (default: the result host)


class FakeApi:
    def __init__(self) -> None:
        self.behaviour = Behaviour()
        self.jobs: dict[str, Job] = {}
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # host, path, headers
        self.sent = 0  # bytes of endless answers and downloads actually sent
        self.stopping = threading.Event()
        self.api = self._serve(self._api_handler())
        self.files = self._serve(self._file_handler())
        self.base_url = f"http://127.0.0.1:{self.api.server_address[1]}"
        self.files_url = f"http://127.0.0.1:{self.files.server_address[1]}"

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        return server

    def close(self) -> None:
        self.stopping.set()  # ends every drip, stall and endless answer still going
        for server in (self.api, self.files):
            server.shutdown()
            server.server_close()

    def submits(self) -> list[tuple[str, str, dict[str, str]]]:
        return [r for r in self.requests if r[1].endswith("/parse/async") and r[0] == "api"]

    # -- misbehaviours, each bounded ---------------------------------------------------
    def _going(self, started: float) -> bool:
        return not self.stopping.is_set() and time.monotonic() - started < BOUND_SECONDS

    def drip(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        """Send a whole HTTP answer, status line first, one byte every ``drip_interval``."""
        started = time.monotonic()
        try:
            for i in range(len(raw)):
                if not self._going(started):
                    return
                handler.wfile.write(raw[i:i + 1])
                handler.wfile.flush()
                self.stopping.wait(self.behaviour.drip_interval)
        except OSError:  # the client hung up: what we wanted
            pass

    def endless(self, handler: BaseHTTPRequestHandler, head: bytes, fill: bytes) -> None:
        """Send ``head`` then ``fill`` over and over, with no length: the body never ends."""
        started = time.monotonic()
        block = fill * max(1, (1 << 16) // len(fill))
        try:
            handler.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n"
                                + head)
            while self.sent < ENDLESS_BYTES and self._going(started):
                handler.wfile.write(block)
                self.sent += len(block)
        except OSError:
            pass

    def stall(self) -> None:
        """Wait, sending nothing, until the bound or the server closes."""
        self.stopping.wait(BOUND_SECONDS)

    # -- the API host ----------------------------------------------------------------
    def _api_handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, body: dict[str, Any], status: int = 200,
                        kind: str = "other") -> None:
                data = json.dumps(body).encode()
                if kind == api.behaviour.answer_to and api.behaviour.answer == "drip":
                    api.drip(self, b"HTTP/1.0 %d OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (status, len(data), data))
                    return
                if kind == api.behaviour.answer_to and api.behaviour.answer == "endless":
                    api.endless(self, data[:-2] + b', "padding": "', b"0")
                    return
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorised(self) -> bool:
                app, secret = self.headers.get("x-ti-app-id"), self.headers.get(
                    "x-ti-secret-code")
                if not app or not secret:
                    self._answer({"code": 40101, "message": "x-ti-app-id or secret empty"})
                    return False
                if (app, secret) != (APP_ID, SECRET):
                    self._answer({"code": 40102, "message": "invalid credentials"})
                    return False
                return True

            def do_POST(self) -> None:  # noqa: N802
                api.requests.append(("api", self.path, dict(self.headers)))
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.path != "/api/v1/xparse/parse/async":
                    self._answer({"code": 40400, "message": "no such path"}, 404)
                    return
                if not self._authorised():
                    return
                if api.behaviour.submit_codes:
                    code = api.behaviour.submit_codes.pop(0)
                    self._answer({"code": code, "message": f"simulated {code}",
                                  "data": {"message": "details"}})
                    return
                ctype = self.headers.get("Content-Type", "")
                if not ctype.startswith("multipart/form-data"):
                    self._answer({"code": 40004, "message": "not multipart"})
                    return
                message = BytesParser().parsebytes(
                    f"Content-Type: {ctype}\r\n\r\n".encode() + body)
                fields: dict[str, Any] = {}
                for part in message.get_payload():
                    name = part.get_param("name", header="content-disposition")
                    fields[name] = {"filename": part.get_filename(),
                                    "content_type": part.get_content_type(),
                                    "data": part.get_payload(decode=True)}
                if "file" not in fields and "file_url" not in fields:
                    self._answer({"code": 40305, "message": "no file uploaded"})
                    return
                job_id = api.behaviour.job_id or f"job{len(api.jobs) + 1:04d}"
                api.jobs[job_id] = Job(job_id, fields)
                self._answer({"code": 200, "message": "success", "data": {"job_id": job_id}},
                             kind="submit")

            def do_GET(self) -> None:  # noqa: N802
                api.requests.append(("api", self.path, dict(self.headers)))
                prefix = "/api/v1/xparse/parse/async/"
                if not self.path.startswith(prefix):
                    self._answer({"code": 40400, "message": "no such path"}, 404)
                    return
                if not self._authorised():
                    return
                job = api.jobs.get(unquote(self.path[len(prefix):]))
                if job is None:
                    self._answer({"code": 40004, "message": "unknown job"})
                    return
                job.polls += 1
                data: dict[str, Any] = {"job_id": job.job_id, "file_id": "f-" + job.job_id}
                final = api.behaviour.final_status_of.get(job.job_id,
                                                          api.behaviour.final_status)
                if job.polls <= api.behaviour.polls_before_done:
                    data["status"] = "pending" if job.polls == 1 else "in_progress"
                elif final == "completed":
                    data["status"] = "completed"
                    data["result_url"] = (f"{api.files_url}/file/xparse_result/{job.job_id}"
                                          if api.behaviour.result_url is _DEFAULT
                                          else api.behaviour.result_url)
                elif final == "failed":
                    data["status"] = "failed"
                    data["message"] = api.behaviour.fail_message
                else:
                    data["status"] = final
                self._answer({"code": 200, "message": "success", "data": data},
                             kind="status")

        return Handler

    # -- the result host -----------------------------------------------------------------
    def _file_handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802
                api.requests.append(("files", self.path, dict(self.headers)))
                data = api.behaviour.result
                mode = api.behaviour.download
                if mode != "ok" and api.behaviour.download_failures > 0:
                    api.behaviour.download_failures -= 1
                else:
                    mode = "ok"
                if mode == "endless":
                    api.endless(self, b'{"code": 200, "data": {"elements": [', b"0, ")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if mode == "stall":  # a third of the body, then nothing
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    api.stall()
                elif mode == "truncated":  # a well-framed response of broken JSON
                    data = data[: len(data) // 2]
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif mode in ("short", "drop"):  # the connection dies mid-body
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data[: len(data) // 3])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                else:
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)

        return Handler
