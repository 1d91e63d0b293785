"""Interrupted runs: Ctrl-C and SIGTERM stop a batch (local or on Dask) or a single conversion
within 2 seconds, leave no worker and no temporary file, keep what had finished and say what
was not converted; a failing abort never skips the cleanup."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest
from conftest import element, envelope

from xparse_convert.cli import main

PROMISE = 2.0  # seconds from the signal to the exit, as the README promises
MARGIN = 2.0  # a loaded test machine is slower than a user's

# A writer that is slow on purpose: "SLOW" takes a minute; "SLOWKID" also starts a process of
# its own first, which must die with the conversion.  Both write before they sleep, so their
# temporary files are on disk while they wait.
SLOTH = '''
import subprocess, sys, time
from xparse_convert import Writer


class Sloth(Writer):
    name = "sloth"
    extension = "txt"

    def default(self, el):
        if el.text == "SLOWKID":
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        self.out.write(el.text + "\\n")
        self.out.flush()
        if el.text.startswith("SLOW"):
            time.sleep(60)
'''


@pytest.fixture
def sloth(tmp_path, monkeypatch):
    """The plugin on PYTHONPATH, and a marker in the environment of every process the test
    starts (and their children), to find survivors."""
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "sloth.py").write_text(textwrap.dedent(SLOTH), encoding="utf-8")
    dist = folder / "sloth-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: sloth\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[xparse_convert.writers]\nsloth = sloth:Sloth\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(folder), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep))
    marker = uuid.uuid4().hex
    monkeypatch.setenv("XPARSE_TEST_MARKER", marker)
    return marker


def survivors(marker: str, grace: float = 0.5) -> list[str]:
    """Live processes (not zombies) carrying the marker, after ``grace`` seconds for a
    SIGKILL already sent to land."""
    deadline = time.monotonic() + grace
    while True:
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            except OSError:
                continue
            if f"XPARSE_TEST_MARKER={marker}".encode() in environ and state != "Z" \
                    and int(pid) != os.getpid():
                found.append(f"{pid}: {cmdline.decode(errors='replace')}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def write(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(envelope([element(f"e{i}", text=t)
                                         for i, t in enumerate(texts)])), encoding="utf-8")
    return path


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.name.endswith(".tmp"))


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run never got going"
        time.sleep(0.05)


def cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "xparse_convert.cli", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def snapshot(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*")}


@pytest.mark.parametrize("signals, status", [
    ((signal.SIGINT,) * 3, 130),  # Ctrl-C pressed three times in quick succession
    ((signal.SIGTERM,), 143),     # what timeout, systemd and Kubernetes send
], ids=["sigint-x3", "sigterm"])
def test_a_signal_stops_a_batch(tmp_path, sloth, signals, status):
    inputs = tmp_path / "in"
    write(inputs / "a.json", ["quick"])
    slow = [f"s{i:02d}" for i in range(12)]
    for name in slow:
        write(inputs / f"{name}.json", ["SLOWKID"])
    out = tmp_path / "out"
    run = tmp_path / "run.json"
    proc = cli(str(inputs), "--to", "sloth,md", "-o", str(out), "--jobs", "2",
               "--report", str(run))
    # mid-flight: the quick input is done and two slow ones are being written
    wait_for(lambda: (out / "a.md").exists() and len(temporaries(out)) >= 4
             and len(survivors(sloth, 0)) >= 5)  # the CLI, two workers, their two children
    started = time.monotonic()
    for number in signals:
        proc.send_signal(number)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - started
    assert proc.returncode == status, err
    assert elapsed < PROMISE + MARGIN, elapsed
    assert "Traceback" not in err, err
    assert survivors(sloth) == []
    assert temporaries(out) == []
    kept = snapshot(out)
    assert sorted(kept) == ["a.md", "a.txt"]
    assert (out / "a.txt").read_text() == "quick\n"
    assert "12 of 13 inputs not converted" in err, err
    named = [line.split("not converted: ")[1] for line in err.splitlines()
             if ": not converted: " in line]
    assert named == [str(inputs / f"{n}.json") for n in slow[:10]]
    assert "... and 2 more" in err
    report = json.loads(run.read_text(encoding="utf-8"))
    assert report["summary"]["not_converted"] == 12 and report["summary"]["converted"] == 1
    assert sorted(Path(i["source"]).stem for i in report["inputs"] if i["interrupted"]) == slow
    time.sleep(1.0)  # nothing may appear once the command has returned
    assert snapshot(out) == kept and survivors(sloth) == []


def test_sigterm_stops_a_single_conversion(tmp_path, sloth):
    source = write(tmp_path / "doc.json", ["first", "SLOW"])
    out = tmp_path / "out"
    proc = cli(str(source), "--to", "sloth,md,docx", "-o", str(out))
    wait_for(lambda: len(temporaries(out)) == 3)
    # temporary names say whose they are: host and pid, for the next run's cleanup
    host = socket.gethostname().split(".")[0]
    for name in temporaries(out):
        assert re.fullmatch(rf"\.doc\.(txt|md|docx)\.{re.escape(host)}[A-Za-z0-9-]*"
                            rf"\.{proc.pid}\.[a-z0-9_]{{8}}\.tmp", name), name
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert time.monotonic() - started < PROMISE + MARGIN
    assert "Traceback" not in err
    assert "1 of 1 input not converted" in err and str(source) in err
    assert list(out.iterdir()) == []


def test_dask_jobs_stop_through_an_event(tmp_path, sloth):
    distributed = pytest.importorskip("distributed") if not os.environ.get("CI") else \
        __import__("distributed")
    inputs = tmp_path / "in"
    for i in range(4):
        write(inputs / f"s{i}.json", ["SLOWKID"])
    out = tmp_path / "out"
    # workers in this process (fast to start), reachable over TCP by the command
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  protocol="tcp", dashboard_address=":0") as cluster:
        proc = cli(str(inputs), "--to", "sloth", "-o", str(out), "--dask-scheduler",
                   cluster.scheduler_address)
        # the workers run in this process: their conversion processes are our children
        wait_for(lambda: len(temporaries(out)) == 2 and len(survivors(sloth, 0)) >= 5)
        started = time.monotonic()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert time.monotonic() - started < PROMISE + MARGIN
        assert "Traceback" not in err, err
        assert "4 of 4 inputs not converted" in err
        # the workers see the event on their next poll and kill their jobs' processes
        wait_for(lambda: survivors(sloth, 0) == [] and temporaries(out) == [], 5)
    assert list(out.iterdir()) == []


def test_a_failing_abort_does_not_keep_the_others_from_cleaning_up(tmp_path, monkeypatch,
                                                                  capsys):
    from xparse_convert.writers.docx import DocxWriter

    real_abort = DocxWriter.abort

    def full_disk(self):  # the abort does its work, then fails as on a full TMPDIR
        real_abort(self)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(DocxWriter, "abort", full_disk)
    source = tmp_path / "cut.json"
    good = json.dumps(envelope([element(f"e{i}", "Title" if i % 9 == 0 else "NarrativeText",
                                        text=f"paragraph {i} " * 20) for i in range(200)]))
    source.write_text(good[:len(good) // 2], encoding="utf-8")  # fails halfway through
    out = tmp_path / "out"
    status = main([str(source), "--to", "md,docx,xlsx,html,jsonl", "-o", str(out)])
    err = capsys.readouterr().err
    assert status == 1
    assert "ends too early" in err and "No space left" not in err, err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.parametrize("fmt, module", [("docx", "docx"), ("xlsx", "xlsx")])
def test_an_interrupt_inside_begin_leaves_no_late_write(tmp_path, monkeypatch, fmt, module):
    """Ctrl-C can land after a writer's ``begin`` opened its zip but before it returned (the
    conversion then never calls its ``abort``): the zip must not finish itself later, when
    collected, into the file the conversion deleted (an "Exception ignored" traceback)."""
    import gc
    import importlib

    writer_module = importlib.import_module(f"xparse_convert.writers.{module}")
    opened = []
    real_package = {"docx": "DocxPackage", "xlsx": "Workbook"}[fmt]
    real = getattr(writer_module, real_package)

    def interrupted(out):
        opened.append(real(out))
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_module, real_package, interrupted)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    source = write(tmp_path / "doc.json", ["text"])
    assert main([str(source), "--to", fmt, "-o", str(tmp_path / "out")]) == 130
    assert len(opened) == 1
    del opened[:]
    gc.collect()
    assert unraisable == []
    assert list((tmp_path / "out").iterdir()) == []


def test_a_batch_killed_outright_leaves_nothing_running(tmp_path, sloth):
    """``kill -9`` of a batch: nothing can clean up in it, so its fork server sees it go and
    exits, and each conversion process sees that, removes its temporary files and takes what
    it started with it."""
    inputs = tmp_path / "in"
    for i in range(2):
        write(inputs / f"s{i}.json", ["SLOWKID"])
    out = tmp_path / "out"
    proc = cli(str(inputs), "--to", "sloth", "-o", str(out), "--jobs", "2")
    # the CLI, the fork server, two conversion processes and the two they started
    wait_for(lambda: len(temporaries(out)) == 2 and len(survivors(sloth, 0)) >= 6)
    proc.kill()
    proc.wait()
    assert survivors(sloth, grace=5) == []
    assert temporaries(out) == [] and list(out.iterdir()) == []
