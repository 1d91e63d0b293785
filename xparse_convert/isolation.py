"""One file, one child process: a crash, a memory blow-up or a hang fails that file alone.

The child is a fresh interpreter (``python -m xparse_convert.isolation``), not a forked or
multiprocessing child, because batch workers are often daemonic processes that may not have
multiprocessing children (Dask's workers are) and forking a threaded worker is unsafe.  The
job goes in on stdin as JSON and the report comes back on stdout; the child caps its own
address space (``--memory-limit``) and the parent kills it at ``--timeout``.  A killed or
crashed child leaves temporary files behind, which the parent removes, so no partial output
survives either way.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

from .batch import Job, run_job, targets_of
from .convert import Report

_SIGNALS = {getattr(signal, n): n for n in ("SIGKILL", "SIGSEGV", "SIGABRT", "SIGBUS",
                                              "SIGTERM", "SIGILL", "SIGFPE")}


def run_isolated(job: Job, to: list[str], options: dict[str, Any] | None,
                 timeout: float | None = None, memory_limit_mb: int | None = None) -> Report:
    """Convert ``job`` in a child process; always returns a report (never raises for the
    file's own failures).  Safe to submit to any executor, Dask's included."""
    started = time.perf_counter()
    payload = json.dumps({"job": asdict(job), "to": to, "options": options or {},
                          "memory_limit_mb": memory_limit_mb})
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "xparse_convert.isolation"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env, start_new_session=True)
    try:
        out, err = proc.communicate(payload.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        _remove_partial_outputs(job, to)
        return Report(source=job.source, error=f"timed out after {timeout:g} s; stopped",
                      seconds=time.perf_counter() - started)
    seconds = time.perf_counter() - started
    lines = out.decode("utf-8", "replace").strip().splitlines()
    if proc.returncode == 0 and lines:
        data = json.loads(lines[-1])
        report = Report(**data)
        report.seconds = seconds
        return report
    _remove_partial_outputs(job, to)
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


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.communicate()


def _remove_partial_outputs(job: Job, to: list[str]) -> None:
    """Temporary files a killed child left beside its targets (``.<name>.*.tmp``)."""
    targets = list(targets_of(job, to).values())
    folder = targets[0].parent
    targets.append(folder / f"{targets[0].stem}_files")
    for target in targets:
        for leftover in folder.glob(f".{glob.escape(target.name)}.*.tmp"):
            if leftover.is_dir():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _child() -> int:
    request = json.loads(sys.stdin.read())
    limit = request.get("memory_limit_mb")
    if limit:
        import resource

        cap = int(limit) * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    job = Job(**request["job"])
    try:
        report = run_job(job, request["to"], request["options"])
    except MemoryError:
        report = Report(source=job.source, error="out of memory" + (
            f" (limit {limit} MB)" if limit else ""))
    except Exception as exc:  # a bug must fail this file with its reason, not the batch
        if limit and isinstance(exc, (ImportError, OSError)) and "map" in str(exc):
            error = f"out of memory (limit {limit} MB)"  # a library could not even load
        else:
            error = f"internal error ({type(exc).__name__}: {exc}); please report it"
        report = Report(source=job.source, error=error)
    sys.stdout.write(json.dumps(asdict(report), ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child())
