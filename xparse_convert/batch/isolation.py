"""One file, one child process: a crash, a memory blow-up or a hang fails that file alone.

The child is never a fork of the batch itself, because batch workers are often daemonic
processes that may not have multiprocessing children (Dask's are) and forking a threaded
worker is unsafe.  It is a fresh interpreter (``python -m xparse_convert.batch.isolation``),
or, for a local batch, a fork of the batch's fork server (``forkserver``): a fresh,
single-threaded interpreter that imported the conversion once, so a file does not pay the
imports again.  Both run ``run_request``: the job goes in on stdin as JSON and the report
comes back on stdout; the child caps its own address space (``--memory-limit``) and the
parent kills it at ``--timeout``, or as soon as the batch's ``stop`` flag is set (Ctrl-C,
SIGTERM).  The child runs in a process group of its own, so killing the group takes
whatever it started too.  A killed or crashed child leaves temporary files behind, which
the parent removes (they carry the child's pid), so no partial output survives either way;
a child whose parent (the batch or the fork server) died stops by itself.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Any, Protocol

from ..convert import Report
from ..output import remove_temporaries
from ..targets import assets_folder, formats
from .jobs import Job, run_job, targets_of

POLL = 0.1  # seconds between looks at a local stop flag
REMOTE_POLL = 0.5  # a Dask Event is a call to the scheduler: every running job makes it
NOT_CONVERTED = "not converted: the batch was interrupted"


class Flag(Protocol):
    """What ``stop`` must offer: a ``threading.Event`` or a ``distributed.Event``."""

    def is_set(self) -> bool: ...


class NotStarted(OSError):
    """A ``Spawner``'s child that never started (its server went first): run it another way."""


class Spawner(Protocol):
    """Where a child can come from instead of a fresh interpreter: ``forkserver.ForkServer``,
    whose ``spawn`` gives a child with ``subprocess.Popen``'s ``pid``, ``returncode``,
    ``communicate`` (which raises ``NotStarted`` for a child that never was) and a ``kill``
    of its process group (or raises ``OSError``)."""

    def spawn(self) -> Any: ...

_SIGNALS = {getattr(signal, n): n for n in ("SIGKILL", "SIGSEGV", "SIGABRT", "SIGBUS",
                                              "SIGTERM", "SIGILL", "SIGFPE")}


def run_isolated(job: Job, to: list[str], options: dict[str, Any] | None,
                 timeout: float | None = None, memory_limit_mb: int | None = None,
                 stop: Flag | None = None, server: Spawner | None = None) -> Report:
    """Convert ``job`` in a child process; always returns a report (never raises for the
    file's own failures).  Safe to submit to any executor, Dask's included.  When ``stop``
    is set the job does not start, or its child is killed: the report has ``interrupted``.
    With a ``server`` (in this process only) the child is forked from it, else (or when it
    cannot) the child is a fresh interpreter; the two behave alike."""
    started = time.perf_counter()
    if _stopped(stop):
        return Report(source=job.source, error=NOT_CONVERTED, interrupted=True)
    payload = json.dumps({"job": asdict(job), "to": to, "options": options or {},
                          "memory_limit_mb": memory_limit_mb})
    proc = _start(server)
    deadline = None if timeout is None else started + timeout
    poll = POLL if isinstance(stop, threading.Event) else REMOTE_POLL
    data: bytes | None = payload.encode()
    while True:
        wait = None if stop is None else poll
        if deadline is not None:
            left = max(deadline - time.perf_counter(), 0.0)
            wait = left if wait is None else min(wait, left)
        try:
            # communicate may be called again after a timeout without losing output
            out, err = proc.communicate(data, timeout=wait)
            break
        except subprocess.TimeoutExpired:
            data = None
        except NotStarted:
            proc, data = _start(None), payload.encode()
        if _stopped(stop):
            _kill(proc)
            _remove_partial_outputs(job, to, proc.pid)
            return Report(source=job.source, error=NOT_CONVERTED, interrupted=True,
                          seconds=time.perf_counter() - started)
        if deadline is not None and time.perf_counter() >= deadline:
            _kill(proc)
            _remove_partial_outputs(job, to, proc.pid)
            return Report(source=job.source, error=f"timed out after {timeout:g} s; stopped",
                          seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    lines = out.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode == 0 and lines:
        report = Report(**json.loads(lines[-1]))
        report.seconds = seconds
        return report
    _remove_partial_outputs(job, to, proc.pid)
    if _stopped(stop):  # killed by the same signal that stopped the batch (systemd's stop)
        return Report(source=job.source, error=NOT_CONVERTED, interrupted=True,
                      seconds=seconds)
    if proc.returncode < 0:
        name = _SIGNALS.get(-proc.returncode, f"signal {-proc.returncode}")
        reason = f"the conversion process was killed ({name})"
        if memory_limit_mb and -proc.returncode in (signal.SIGKILL, signal.SIGSEGV,
                                                    signal.SIGABRT):
            reason += f"; it may have run out of memory (limit {memory_limit_mb} MB)"
    else:
        last = err.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        reason = f"the conversion process crashed (exit code {proc.returncode})"
        if last[0]:
            reason += f": {last[0][:200]}"
    return Report(source=job.source, error=reason, seconds=seconds)


def _start(server: Spawner | None) -> Any:
    if server is not None:
        try:
            return server.spawn()
        except OSError:
            pass  # the server is gone: this job, and the next, start the slow way
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "xparse_convert.batch.isolation"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)


def _stopped(stop: Flag | None) -> bool:
    if stop is None:
        return False
    try:
        return bool(stop.is_set())
    except Exception:  # a scheduler that went away cannot ask us to stop
        return False


def _kill(proc: Any) -> None:
    if not isinstance(proc, subprocess.Popen):
        proc.kill()  # a forked child kills its group itself
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def _remove_partial_outputs(job: Job, to: list[str], pid: int | None) -> None:
    """Temporary files the child ``pid`` left beside its targets (its own, not another
    run's: temporary names carry the pid); ``None``: it never started."""
    if pid is None:
        return
    folder = job.folder
    names = [t.name for t in targets_of(job, formats(to)).values()]
    remove_temporaries(folder, [*names, assets_folder(job.stem, folder).name], pid)


def _watch_parent(job: Job, to: list[str]) -> None:
    """Stop this child, and whatever it started, when its parent dies (``kill -9`` of a
    batch, which ends its fork server too): nobody would read the report, and outputs must
    not appear after the batch is gone."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                _remove_partial_outputs(job, to, os.getpid())
                if os.getpgrp() == os.getpid():  # our own group: what we started goes too
                    os.killpg(os.getpid(), signal.SIGKILL)
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def run_request() -> int:
    """The child's side (a fresh interpreter or a forked one): the request from stdin, the
    memory cap, the conversion, its report on stdout; the exit status."""
    text = sys.stdin.read()
    if not text:  # a forked child whose job was called off before it was forked
        return 0
    request = json.loads(text)
    job = Job(**request["job"])
    # the watch first: under a cap too tight for a thread's stack, starting it afterwards
    # would hang (the new thread dies before it can say it started)
    _watch_parent(job, request["to"])
    limit = request.get("memory_limit_mb")
    if limit:
        import resource

        cap = int(limit) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    report = run_job(job, request["to"], request["options"], memory_limit_mb=limit)
    sys.stdout.write(json.dumps(asdict(report), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(run_request())
