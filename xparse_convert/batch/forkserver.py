"""A fork server: one interpreter that imports the conversion once and forks a fresh process
for each file, so a batch pays the imports (lxml, Pillow, the writers: about 0.55 s of CPU)
once instead of once per file.

Measured on the 2-core machine (a no-op job, 20 in a row): a fresh interpreter that imports
the five writers costs 560-610 ms of CPU per file; multiprocessing's ``forkserver`` with those
modules preloaded 12-16 ms of wall time; ``os.fork`` of a preloaded process 3 ms.  This is
our own server rather than multiprocessing's because a batch runs in places multiprocessing
refuses (Dask's daemonic workers may not have multiprocessing children), because each child
needs its own session (killing its group kills what it started), its own stderr (a crash's
last line is its reason) and no re-import of the caller's ``__main__``.

The server is a fresh interpreter (``python -m xparse_convert.batch.forkserver``) started by
the batch with one end of a socket pair.  It imports the requested writers, converts a small
built-in document once so that what writers import on first use is loaded too, and then
waits.  For each job the batch sends it, over that socket, the child's stdin, stdout and
stderr pipes and a status socket; the server forks, the child starts a session of its own,
takes the pipes as 0, 1 and 2 and runs the same code as a fresh interpreter would
(``isolation.run_request``).  The server writes the child's pid, then its exit status, on
the status socket.  The server is single-threaded (forking is safe) and never runs a job
itself, so every child starts from the same clean state and a crash or memory blow-up takes
only that child.  When the batch goes (its end of the socket closes, however it ended) the
server exits; a child whose server is gone stops by itself (``isolation``'s parent watch).
"""

from __future__ import annotations

import gc
import io
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Sequence

from .isolation import NotStarted, run_request

_STATUS = struct.Struct("!q")  # the pid, then the exit status (Popen's returncode)
STARTUP = 60.0  # seconds a job waits for the server to fork it (imports under load)
_STOP_GRACE = 2.0  # seconds a killed child has to be reaped before we stop waiting


class ForkServer:
    """The batch's side: start the server, fork a child per job, stop the server."""

    def __init__(self, to: Sequence[str]) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._control = ours
        self._lock = threading.Lock()
        self.broken = False
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "xparse_convert.batch.forkserver",
                 str(theirs.fileno()), json.dumps(list(to))],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"), start_new_session=True)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()

    @property
    def pid(self) -> int:
        """The server's process id."""
        return self._proc.pid

    def spawn(self) -> ForkedChild:
        """A child for one job (its pid arrives once the server has forked it); raises
        ``OSError`` when the server cannot take it (then run the job another way)."""
        if self.broken:
            raise OSError("the fork server has stopped")
        return ForkedChild(self)

    def _send(self, fds: list[int]) -> None:
        try:
            with self._lock:
                socket.send_fds(self._control, [b"j"], fds)
        except OSError:
            self.broken = True
            raise

    def close(self) -> None:
        """Stop the server within about a second (an interrupted batch has two): it exits
        when its socket closes, or on SIGTERM while it is still warming up.  Running
        children are the callers' to kill (they stop by themselves once it is gone)."""
        self._control.close()
        for ask in (None, self._proc.terminate, self._proc.kill):
            if ask is not None:
                ask()
            try:
                self._proc.wait(timeout=0.4)
                return
            except subprocess.TimeoutExpired:
                continue
        self._proc.wait()


class ForkedChild:
    """One forked child, with what ``subprocess.Popen`` offers ``isolation``: ``pid``,
    ``returncode``, ``communicate(input, timeout)`` (may be called again after a timeout)
    and ``kill()`` (its whole process group, then waits)."""

    args = "xparse_convert.batch.forkserver child"

    def __init__(self, server: ForkServer) -> None:
        self.pid: int | None = None
        self.returncode: int | None = None
        stdin_r, self._stdin = os.pipe()
        stdout_r, stdout_w = os.pipe()
        stderr_r, stderr_w = os.pipe()
        self._status, status_theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._out, self._err, self._state = bytearray(), bytearray(), bytearray()
        # what is still open to read, and where its bytes go
        self._open = {stdout_r: self._out, stderr_r: self._err,
                      self._status.fileno(): self._state}
        self._input: memoryview | None = None
        try:
            server._send([stdin_r, stdout_w, stderr_w, status_theirs.fileno()])
        except OSError:
            self._close_all()
            raise
        finally:
            for fd in (stdin_r, stdout_w, stderr_w):
                os.close(fd)
            status_theirs.close()
        self._sent = time.monotonic()

    def communicate(self, input: bytes | None = None,
                    timeout: float | None = None) -> tuple[bytes, bytes]:
        """Write ``input`` to the child's stdin, read its stdout and stderr to the end and
        its exit status; ``subprocess.TimeoutExpired`` after ``timeout`` seconds."""
        if input is not None and self._input is None:
            self._input = memoryview(input)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._open:
            if self.pid is None and (self._status.fileno() not in self._open
                                     or time.monotonic() - self._sent > STARTUP):
                # never forked: once it is, if ever, it finds its stdin closed and exits
                self._close_all()
                raise NotStarted("the fork server did not start the conversion process")
            wait = 1.0 if deadline is None else min(max(deadline - time.monotonic(), 0.0), 1.0)
            # the job goes in once the child exists, so a late fork cannot run it twice
            writing = [self._stdin] if self._stdin >= 0 and self._input is not None \
                and self.pid is not None else []
            readable, writable, _ = select.select(list(self._open), writing, [], wait)
            if writable:
                self._write_input()
            for fd in readable:
                self._read(fd)
            if self._open and deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        self._close_stdin()
        if self.pid is None:
            self._close_all()
            raise NotStarted("the fork server did not start the conversion process")
        if self.returncode is None:
            self._lost("its fork server stopped")
        return bytes(self._out), bytes(self._err)

    def _write_input(self) -> None:
        assert self._input is not None
        try:
            written = os.write(self._stdin, self._input[:65536])
        except OSError:  # the child is gone without reading it: its status says why
            written = len(self._input)
        self._input = self._input[written:]
        if not self._input:
            self._close_stdin()

    def _read(self, fd: int) -> None:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if chunk:
            self._open[fd] += chunk
            if fd == self._status.fileno():
                self._parse_status()
            return
        del self._open[fd]
        if fd != self._status.fileno():
            os.close(fd)

    def _parse_status(self) -> None:
        if self.pid is None and len(self._state) >= _STATUS.size:
            self.pid = _STATUS.unpack_from(self._state)[0]
        if self.returncode is None and len(self._state) >= 2 * _STATUS.size:
            self.returncode = _STATUS.unpack_from(self._state, _STATUS.size)[0]

    def _lost(self, why: str) -> None:
        self.returncode = 1
        self._err += f"\n{why}\n".encode()
        self._close_all()

    def kill(self) -> None:
        """Kill the child's process group (whatever it started too) and wait for it."""
        if self.pid is None:
            # not forked yet: once it is, it finds its stdin closed and exits untouched
            self._close_all()
            self.returncode = -signal.SIGKILL
            return
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:  # between the fork and its setsid the child is not a group yet
                os.kill(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.communicate(timeout=_STOP_GRACE)
        except subprocess.TimeoutExpired:
            self._close_all()

    def _close_stdin(self) -> None:
        if self._stdin >= 0:
            os.close(self._stdin)
            self._stdin = -1

    def _close_all(self) -> None:
        status = self._status.fileno()
        for fd in self._open:
            if fd != status:
                os.close(fd)
        self._open.clear()
        self._status.close()
        self._close_stdin()

    def __del__(self) -> None:
        if hasattr(self, "_stdin"):
            self._close_all()


# The server's side.

_PNG = bytes.fromhex(  # a 2x2 picture: warms Pillow's PNG path
    "89504e470d0a1a0a0000000d4948445200000002000000020802000000fdd49a73000000164944415478"
    "da633c2127c7c0c0c0c4c0c0c0c0c000000d0401087fad82510000000049454e44ae426082")


def _warm_up_document() -> bytes:
    """A small result with one of each thing the built-in writers import for on first use:
    a title, styled text, inline math, a list, a table with a merged cell and its caption,
    a picture, a formula."""
    import base64

    def el(id_: str, type_: str, text: str, **extra: object) -> dict[str, object]:
        return {"element_id": id_, "type": type_, "text": text, "page_number": 1,
                "metadata": {}, **extra}

    cells = [{"row": 1, "col": 1, "row_span": 1, "col_span": 2, "text": "Head"},
             {"row": 2, "col": 1, "row_span": 1, "col_span": 1, "text": "1,234.50"},
             {"row": 2, "col": 2, "row_span": 1, "col_span": 1, "text": "2024-01-02"}]
    elements = [
        el("t", "Title", "Warm up"),
        el("p", "NarrativeText", "Some **bold** and *emphasis*, $x^2 + y_1$."),
        el("l", "ListItem", "1. an item"),
        el("c", "TableCaption", "Table 1"),
        el("tb", "Table", "", table_structure={"rows": 2, "cols": 2, "cells": cells}),
        el("i", "Image", "", image_data={"base64": base64.b64encode(_PNG).decode(),
                                         "mime_type": "image/png"}),
        el("fc", "FigureCaption", "Figure 1"),
        el("f", "Formula", r"\frac{a}{b} = \sqrt{c}"),
    ]
    result = {"code": 200, "message": "success",
              "data": {"schema_version": "1.3.0", "file_id": "warm-up",
                       "pages": [{"page_number": 1, "width": 595, "height": 842}],
                       "elements": elements}}
    return json.dumps(result).encode()


def _warm_up(to: Sequence[str]) -> None:
    """Import the writers and convert the warm-up document with the built-in ones (a
    plug-in's conversion might do anything; importing it is what a fresh child did too)."""
    from ..convert import convert
    from ..targets import formats

    writers = formats(to)
    built_in = [w.name for w in writers if w.__module__.startswith("xparse_convert.writers.")]
    if not built_in:
        return
    with tempfile.TemporaryDirectory(prefix="xparse-convert-warm-up-") as folder:
        try:
            convert(io.BytesIO(_warm_up_document()), built_in, folder, name="warm-up")
        except Exception:  # a warm-up that fails only leaves more to import per child
            pass


def _serve(control: socket.socket) -> None:
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wake-up pipe says a child ended
    children: dict[int, socket.socket] = {}
    while True:
        ready = select.select([control, wake_r], [], [])[0]
        if wake_r in ready:
            while True:
                try:
                    if not os.read(wake_r, 256):
                        break
                except BlockingIOError:
                    break
            _reap(children)
        if control not in ready:
            continue
        try:
            _, fds, _, _ = socket.recv_fds(control, 1, 4)
        except OSError:
            return
        if len(fds) != 4:  # the batch is gone (end of file), or a malformed request
            for fd in fds:
                os.close(fd)
            if not fds:
                return
            continue
        pid = os.fork()
        if pid == 0:
            _become_child(fds, [control.fileno(), wake_r, wake_w,
                                *(s.fileno() for s in children.values())])
        for fd in fds[:3]:
            os.close(fd)
        status = socket.socket(fileno=fds[3])
        _tell(status, pid)
        children[pid] = status
        _reap(children)  # it may have ended already


def _reap(children: dict[int, socket.socket]) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock = children.pop(pid, None)
        if sock is not None:
            _tell(sock, os.waitstatus_to_exitcode(status))
            sock.close()


def _tell(sock: socket.socket, value: int) -> None:
    try:
        sock.sendall(_STATUS.pack(value))
    except OSError:  # the batch stopped waiting for this child
        pass


def _become_child(fds: list[int], inherited: list[int]) -> None:
    """In the forked child: a session of its own, the pipes as stdin, stdout and stderr,
    the server's signal handling undone, then the job; never returns."""
    code = 1
    try:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for number in (signal.SIGCHLD, signal.SIGTERM):
            signal.signal(number, signal.SIG_DFL)
        for fd in inherited:
            os.close(fd)
        stdin_r, stdout_w, stderr_w, status = fds
        os.close(status)
        for fd, target in ((stdin_r, 0), (stdout_w, 1), (stderr_w, 2)):
            os.dup2(fd, target)
            os.close(fd)
        code = run_request()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _exit_on_sigterm(*_: object) -> None:
    sys.exit(0)  # unwinds the warm-up, which removes its folder


def main() -> None:
    """The server: ``python -m xparse_convert.batch.forkserver FD FORMATS-AS-JSON``."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    control = socket.socket(fileno=int(sys.argv[1]))
    _warm_up(json.loads(sys.argv[2]))
    gc.collect()
    gc.freeze()  # children never scan or touch what the server built: fewer copied pages
    _serve(control)
    os._exit(0)  # nothing to flush or remove: skip the interpreter's slow teardown


if __name__ == "__main__":
    main()
