"""Batches: per-file isolation (crash, memory, timeout), the fork server, resume, run reports,
Dask."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import SAMPLE, element, envelope

from xparse_convert import convert_many
from xparse_convert.cli import main

# A writer plug-in that misbehaves on purpose when the input asks it to: the input is what is
# bad, the process it runs in is what must not take the batch down.
SABOTEUR = '''
import os, time
from xparse_convert import Writer


class Saboteur(Writer):
    name = "saboteur"
    extension = "txt"

    def default(self, el):
        if el.text == "CRASH":
            os.abort()
        if el.text == "HANG":
            time.sleep(600)
        self.out.write(el.text + "\\n")
'''


@pytest.fixture
def saboteur(tmp_path, monkeypatch):
    folder = tmp_path / "plugin"
    folder.mkdir()
    (folder / "saboteur.py").write_text(textwrap.dedent(SABOTEUR), encoding="utf-8")
    dist = folder / "saboteur-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: saboteur\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[xparse_convert.writers]\nsaboteur = saboteur:Saboteur\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(folder), os.environ.get("PYTHONPATH", "")]).strip(os.pathsep))
    return folder


def write(path: Path, doc) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*") if p.name.endswith(".tmp"))


def test_crash_and_hang_fail_alone(tmp_path, saboteur):
    inputs = tmp_path / "in"
    write(inputs / "good.json", envelope([element("a", text="fine")]))
    write(inputs / "crash.json", envelope([element("a", text="CRASH")]))
    write(inputs / "hang.json", envelope([element("a", text="HANG")]))
    write(inputs / "sub" / "good2.json", envelope([element("a", text="also fine")]))
    out = tmp_path / "out"
    started = time.monotonic()
    reports = convert_many([inputs], "saboteur,md", out, jobs=2, timeout=5)
    assert time.monotonic() - started < 60
    by_name = {Path(r.source).name: r for r in reports}
    assert by_name["good.json"].ok and by_name["good2.json"].ok
    assert (out / "good.txt").read_text() == "fine\n"
    assert (out / "sub" / "good2.txt").is_file() and (out / "sub" / "good2.md").is_file()
    assert "killed (SIGABRT)" in by_name["crash.json"].error
    assert "timed out after 5 s" in by_name["hang.json"].error
    assert not (out / "crash.txt").exists() and not (out / "hang.txt").exists()
    assert not (out / "crash.md").exists() and not (out / "hang.md").exists()
    assert leftovers(out) == []


def test_out_of_memory_fails_alone(tmp_path):
    inputs = tmp_path / "in"
    write(inputs / "good.json", envelope([element("a", text="fine")]))
    huge = "<table>" + "<tr><td>cell</td><td>cell</td></tr>" * 1_000_000 + "</table>"
    write(inputs / "huge.json", envelope([element("t", "Table", huge)]))
    out = tmp_path / "out"
    reports = convert_many([inputs], "md,xlsx", out, memory_limit_mb=300)
    by_name = {Path(r.source).name: r for r in reports}
    assert by_name["good.json"].ok and (out / "good.md").is_file()
    error = by_name["huge.json"].error
    assert error and ("out of memory" in error or "300 MB" in error), error
    assert not (out / "huge.md").exists() and not (out / "huge.xlsx").exists()
    assert leftovers(out) == []


def test_mixed_folder_from_the_command_line_with_a_report(tmp_path, capsys):
    inputs = tmp_path / "in"
    shutil.copy(SAMPLE, inputs.mkdir() or inputs / "report.json")
    write(inputs / "api.json", {"code": 40303, "message": "bad type"})
    (inputs / "cut.json").write_bytes(SAMPLE.read_bytes()[:3000])
    out = tmp_path / "out"
    run_report = tmp_path / "run.json"
    status = main([str(inputs), "--to", "docx,xlsx,html,md,jsonl", "-o", str(out), "--jobs", "2",
                   "--report", str(run_report)])
    assert status == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if ": error: " in line]
    assert len(errors) == 2
    assert any("api.json" in e and "40303" in e for e in errors)
    assert any("cut.json" in e and "byte 3000" in e for e in errors)
    assert sorted(p.name for p in out.iterdir()) == [
        "report.docx", "report.html", "report.jsonl", "report.md", "report.xlsx",
        "report_files"]
    data = json.loads(run_report.read_text(encoding="utf-8"))
    assert data["summary"]["inputs"] == 3 and data["summary"]["failed"] == 2
    assert data["summary"]["pages"] == 4
    outcome = {Path(i["source"]).name: i for i in data["inputs"]}
    assert outcome["report.json"]["ok"] and len(outcome["report.json"]["outputs"]) == 5
    assert "40303" in outcome["api.json"]["error"]


def test_skip_existing_resumes(tmp_path):
    inputs = tmp_path / "in"
    for name in ("a", "b", "c"):
        write(inputs / f"{name}.json", envelope([element("x", text=name)]))
    out = tmp_path / "out"
    first = convert_many([inputs], "md", out)
    assert all(r.ok and not r.skipped for r in first)
    old = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    time.sleep(0.05)
    write(inputs / "b.json", envelope([element("x", text="b changed")]))
    (out / "c.md").unlink()  # an output lost in a crash
    second = convert_many([inputs], "md", out, skip_existing=True)
    assert [(Path(r.source).name, r.skipped) for r in second] == [
        ("a.json", True), ("b.json", False), ("c.json", False)]
    assert (out / "a.md").stat().st_mtime_ns == old["a.md"]
    assert "b changed" in (out / "b.md").read_text()
    assert (out / "c.md").is_file()


def test_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("distributed") if not os.environ.get("CI") else \
        __import__("distributed")
    inputs = tmp_path / "in"
    for i in range(4):
        shutil.copy(SAMPLE, (inputs.mkdir(exist_ok=True) or inputs) / f"r{i}.json")
    (inputs / "bad.json").write_text("{", encoding="utf-8")
    out = tmp_path / "out"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        reports = convert_many([inputs], "docx,md", out, executor=client.get_executor())
        workers = len(client.scheduler_info()["workers"])
    assert workers == 2
    by_name = {Path(r.source).name: r for r in reports}
    assert "ends too early" in by_name["bad.json"].error
    for i in range(4):
        assert by_name[f"r{i}.json"].ok and by_name[f"r{i}.json"].pages == 4
        assert (out / f"r{i}.docx").stat().st_size > 10_000
        assert (out / f"r{i}.md").read_text(encoding="utf-8").startswith("# 星河科技")


def test_dask_scheduler_flag(tmp_path, capsys):
    distributed = pytest.importorskip("distributed") if not os.environ.get("CI") else \
        __import__("distributed")
    shutil.copy(SAMPLE, tmp_path / "r.json")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=True,
                                  dashboard_address=None) as cluster:
        status = main([str(tmp_path / "r.json"), "--to", "md", "-o", str(tmp_path / "out"),
                       "--dask-scheduler", cluster.scheduler_address])
    assert status == 0, capsys.readouterr().err
    assert (tmp_path / "out" / "r.md").is_file()
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "2s"}):
        assert main([str(tmp_path / "r.json"), "--to", "md", "--dask-scheduler",
                     "tcp://127.0.0.1:1"]) == 2
    assert "cannot reach the Dask scheduler" in capsys.readouterr().err


def test_a_run_report_is_not_an_input_next_time(tmp_path):
    inputs = tmp_path / "in"
    write(inputs / "a.json", envelope([element("x", text="a")]))
    run = inputs / "run.json"  # inside the folder the batch reads
    for _ in range(2):
        done = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(inputs), "--to",
                               "md", "--report", str(run)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == (f"xparse-convert: note: {run}: a run report "
                                   "(xparse-convert.run-report/1), not a result; skipped")
    report = json.loads(run.read_text(encoding="utf-8"))
    assert report["_schema"] == "xparse-convert.run-report/1"
    assert [Path(i["source"]).name for i in report["inputs"]] == ["a.json"]
    assert not (inputs / "run.md").exists()


def test_report_to_standard_output(tmp_path):
    source = write(tmp_path / "a.json", envelope([element("x", text="a")]))
    done = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(source), "--to", "md",
                           "--report", "-"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["_schema"] == "xparse-convert.run-report/1"
    assert report["summary"]["converted"] == 1 and report["inputs"][0]["ok"]


def test_report_to_an_unwritable_place_fails_before_any_work(tmp_path):
    source = write(tmp_path / "a.json", envelope([element("x", text="a")]))
    (tmp_path / "file.txt").write_text("a file, not a folder")
    out = tmp_path / "out"
    place = tmp_path / "file.txt" / "run.json"
    done = subprocess.run([sys.executable, "-m", "xparse_convert.cli", str(source), "--to", "md",
                           "-o", str(out), "--report", str(place)], capture_output=True,
                          text=True)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(place) in lines[0] and "not a folder" in lines[0], lines
    assert "internal error" not in done.stderr
    assert not out.exists()


def test_a_batch_writes_what_a_single_conversion_writes(tmp_path):
    """Every file of a batch is forked from a server that converted a warm-up document
    first: nothing of that may show in an output."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(SAMPLE, inputs / "a.json")
    write(inputs / "b.json", envelope([element("x", text="other")]))
    formats = "docx,xlsx,html,jsonl,md"
    for args, out in (([str(inputs), "--jobs", "2"], "batch"),
                      ([str(inputs / "a.json")], "single")):
        done = subprocess.run([sys.executable, "-m", "xparse_convert.cli", *args, "--to",
                               formats, "-o", str(tmp_path / out)], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stderr
    single = {p.relative_to(tmp_path / "single"): p.read_bytes()
              for p in (tmp_path / "single").rglob("*") if p.is_file()}
    assert len(single) > 5  # the five outputs and the Markdown's pictures
    for path, data in single.items():
        assert (tmp_path / "batch" / path).read_bytes() == data, path


def test_a_batch_pays_for_the_imports_once(tmp_path):
    """The CPU a batch spends on each further small file (the batch command and every
    process below it): a fresh interpreter per file cost about 0.6 s here, importing."""
    inputs = tmp_path / "in"
    for i in range(9):
        write(inputs / f"r{i}.json", envelope([element("x", text=f"file {i}")]))

    def cpu_of(sources: list[Path]) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([sys.executable, "-m", "xparse_convert.cli", *map(str, sources),
                               "--to", "docx,xlsx,html,jsonl,md", "-o", str(tmp_path / "out"),
                               "--jobs", "1"], capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        assert done.returncode == 0, done.stderr
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)

    sources = sorted(inputs.iterdir())
    per_file = (cpu_of(sources) - cpu_of(sources[:1])) / (len(sources) - 1)
    assert per_file < 0.2, f"{per_file:.3f} s of CPU per file"
    assert len(list((tmp_path / "out").glob("*.docx"))) == 9


def test_a_file_running_when_the_fork_server_dies_fails_alone(tmp_path, saboteur):
    from xparse_convert.batch.forkserver import ForkServer
    from xparse_convert.batch.isolation import run_isolated
    from xparse_convert.batch.jobs import Job

    hang = write(tmp_path / "in" / "hang.json", envelope([element("a", text="HANG")]))
    good = write(tmp_path / "in" / "good.json", envelope([element("a", text="fine")]))
    out = tmp_path / "out"
    out.mkdir()
    server = ForkServer(["saboteur"])
    try:
        with ThreadPoolExecutor(1) as pool:
            hanging = pool.submit(run_isolated, Job(str(hang), str(out)), ["saboteur"], {}, 60,
                                  None, None, server)
            deadline = time.monotonic() + 20
            while not leftovers(out):
                assert time.monotonic() < deadline and not hanging.done()
                time.sleep(0.05)
            os.kill(server.pid, signal.SIGKILL)
            report = hanging.result(timeout=10)
        assert "fork server stopped" in report.error, report.error
        assert leftovers(out) == []
        # the next file is converted without it, in a fresh interpreter
        report = run_isolated(Job(str(good), str(out)), ["saboteur"], {}, 60, None, None,
                              server)
        assert report.ok, report.error
        assert (out / "good.txt").read_text() == "fine\n"
    finally:
        server.close()


def test_a_job_the_fork_server_never_started_runs_in_a_fresh_interpreter(tmp_path):
    from xparse_convert.batch.forkserver import ForkServer
    from xparse_convert.batch.isolation import run_isolated
    from xparse_convert.batch.jobs import Job

    good = write(tmp_path / "good.json", envelope([element("a", text="fine")]))
    server = ForkServer(["md"])
    try:
        queued = server.spawn()  # sent while the server is still importing (about 0.5 s)
        os.kill(server.pid, signal.SIGKILL)

        class Queued:
            def spawn(self):
                return queued

        report = run_isolated(Job(str(good), str(tmp_path / "out")), ["md"], {}, 60, None,
                              None, Queued())
        assert report.ok, report.error
        assert (tmp_path / "out" / "good.md").read_text(encoding="utf-8") == "fine\n"
    finally:
        server.close()
