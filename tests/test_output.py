"""Outputs: one atomic-file rule (the mode of any new file), pictures never written through a
symbolic link, and the next run cleaning up after a run that was killed."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import SAMPLE


def cli(*args: str, umask: int | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xparse_convert.cli", *args],
                          capture_output=True, text=True, timeout=120,
                          preexec_fn=None if umask is None else (lambda: os.umask(umask)))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o027], ids=["umask-022", "umask-027"])
def test_outputs_and_the_run_report_get_the_mode_of_any_new_file(tmp_path, umask):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SAMPLE, inputs / "report.json")
    out = tmp_path / "out"
    run = tmp_path / "run.json"
    done = cli(str(inputs), "--to", "md,docx", "--images", "files", "-o", str(out),
               "--report", str(run), umask=umask)
    assert done.returncode == 0, done.stderr
    files = [run, out / "report.md", out / "report.docx"]
    files += list((out / "report_files").iterdir())
    assert {p.name: mode(p) for p in files} == {p.name: 0o666 & ~umask for p in files}
    assert mode(out / "report_files") == 0o777 & ~umask


def test_a_pictures_folder_that_is_a_symbolic_link_is_refused(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "mine.txt").write_text("not yours")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report_files").symlink_to(elsewhere)
    done = cli(str(SAMPLE), "--to", "md", "--images", "files", "-o", str(out))
    assert done.returncode == 1
    errors = done.stderr.strip().splitlines()
    assert len(errors) == 1 and str(out / "report_files") in errors[0], done.stderr
    assert "symbolic link" in errors[0]
    assert (out / "report_files").is_symlink()
    assert os.readlink(out / "report_files") == str(elsewhere)
    assert sorted(p.name for p in elsewhere.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in out.iterdir()) == ["report_files"]


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("how", ["single", "batch"])
def test_the_next_run_removes_what_a_killed_run_left(tmp_path, how):
    host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32]  # one label, no dots
    out = tmp_path / "out"
    out.mkdir()
    gone, here = dead_pid(), os.getpid()
    day_old = time.time() - 25 * 3600

    def make(name: str, folder: bool = False, old: bool = False) -> Path:
        path = out / name
        if folder:
            path.mkdir()
            (path / "img-0123456789abcdef.png").write_bytes(b"\x89PNG")
        else:
            path.write_text("partial")
        if old:
            os.utime(path, (day_old, day_old))
        return path

    stale = [
        make(f".report.docx.{host}.{gone}.k3j9x0aa.tmp"),             # its process is gone
        make(f".report_files.{host}.{gone}.q81zz0ab.tmp", folder=True),
        make(f".other.md.elsewhere.{here}.m0m0m0m0.tmp", old=True),    # any host, > 24 h
        make(f".report.md.{host}.{here}.abcdefgh.tmp", old=True),
    ]
    kept = [
        make(f".report.md.{host}.{here}.zzzzzzzz.tmp"),        # a live process's, on this host
        make(f".report.md.elsewhere.{gone}.aaaaaaaa.tmp"),     # another host's, recent
        make(".notes.tmp", old=True),                          # not ours
        make(".report.md.x1y2z3ab.tmp", old=True),             # no host and pid: not ours
        make("report.txt", old=True),
    ]
    link = out / f".linked.md.{host}.{gone}.abcdefgh.tmp"
    link.symlink_to(kept[-1])
    kept.append(link)
    args = [str(SAMPLE), "--to", "md", "-o", str(out)] + (["--jobs", "1"] if how == "batch"
                                                         else [])
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    notes = [line for line in done.stderr.splitlines() if "temporary" in line]
    assert notes == [f"xparse-convert: note: removed 4 temporary files left by an "
                     f"interrupted run in {out}"], done.stderr
    assert [p.name for p in stale if os.path.lexists(p)] == []
    assert [p.name for p in kept if os.path.lexists(p)] == [p.name for p in kept]
    assert (out / "report.md").is_file()
