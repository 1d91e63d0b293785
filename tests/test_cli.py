"""The command line: one-line errors, exit codes, atomic outputs, batches, stdin/stdout."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, element, envelope

from xparse_convert.cli import main

CLI = [sys.executable, "-m", "xparse_convert.cli"]


def run(args, **kw):
    """The CLI in a subprocess, as a user runs it."""
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120, **kw)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("xparse-convert: error:")]


def test_convert_sample_to_two_formats_in_one_pass(tmp_path):
    proc = run([SAMPLE, "--to", "jsonl,md", "-o", tmp_path])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "report.jsonl").is_file() and (tmp_path / "report.md").is_file()
    assert proc.stderr == ""


def test_default_output_folder_is_the_inputs_own(tmp_path):
    src = tmp_path / "r.json"
    shutil.copy(SAMPLE, src)
    assert main([str(src), "--to", "jsonl"]) == 0
    assert (tmp_path / "r.jsonl").is_file()


BAD_INPUTS = {
    "truncated": (lambda: SAMPLE.read_bytes()[:5000], "ends too early", r"byte 5000"),
    "api-error": (lambda: json.dumps({"code": 40102, "message": "bad key"}).encode(),
                  "code 40102: x-ti-app-id or x-ti-secret-code is invalid", None),
    "wrong-top-level": (lambda: b"[1, 2", "ends too early", "byte 5"),
    "a-string": (lambda: b'"hello"', "top level is a string", "byte 0"),
    "garbage": (lambda: b'{"data": {"elements": [{"a": @}]}}', "malformed JSON", "byte 29"),
    "not-utf8": (lambda: b'{"data": {"elements": [{"text": "\xff\xfe"}]}}', "UTF", "near byte"),
    "no-elements": (lambda: b'{"code": 200, "data": {"markdown": "x"}}', "no element list",
                    None),
    "empty": (lambda: b"", "empty", "byte 0"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_leaves_nothing(tmp_path, case):
    make, what, where = BAD_INPUTS[case]
    src = tmp_path / f"{case}.json"
    src.write_bytes(make())
    out = tmp_path / "out"
    proc = run([src, "--to", "jsonl,md", "-o", out])
    assert proc.returncode == 1
    lines = error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert what in lines[0]
    # the place, when the input has one, comes right after its name
    assert lines[0].startswith(f"xparse-convert: error: {src}: {where or ''}")
    assert not out.exists() or list(out.iterdir()) == []


def test_a_failed_conversion_never_overwrites_a_good_output(tmp_path):
    src = tmp_path / "report.json"
    shutil.copy(SAMPLE, src)
    assert main([str(src), "--to", "jsonl"]) == 0
    good = (tmp_path / "report.jsonl").read_bytes()
    src.write_bytes(SAMPLE.read_bytes()[:-200])
    assert main([str(src), "--to", "jsonl"]) == 1
    assert (tmp_path / "report.jsonl").read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.jsonl"]


def test_one_bad_file_in_a_batch_does_not_stop_the_others(tmp_path, capsys):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE, folder / "a.json")
    shutil.copy(SAMPLE, folder / "sub" / "b.json")
    (folder / "bad.json").write_bytes(b"{")
    for jobs in ("1", "2"):
        out = tmp_path / f"out{jobs}"
        status = main([str(folder), "--to", "md", "-o", str(out), "--jobs", jobs])
        assert status == 1
        assert (out / "a.md").is_file() and (out / "sub" / "b.md").is_file()
        assert not (out / "bad.md").exists()
        errors = error_lines(capsys.readouterr().err)
        assert len(errors) == 1 and "bad.json" in errors[0]


def test_two_inputs_writing_the_same_output_is_an_error(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(SAMPLE, tmp_path / "a" / "r.json")
    shutil.copy(SAMPLE, tmp_path / "b" / "r.json")
    status = main([str(tmp_path / "a" / "r.json"), str(tmp_path / "b" / "r.json"), "--to", "md",
                   "-o", str(tmp_path / "out")])
    assert status == 1
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and "b/r.json" in errors[0] and "would overwrite" in errors[0]
    assert (tmp_path / "out" / "r.md").is_file()


def test_stdin_and_stdout(tmp_path):
    proc = run(["-", "--to", "md", "-o", "-", "--name", "piped"], input=SAMPLE.read_text(
        encoding="utf-8"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("# 星河科技")
    assert "](data:image/png;base64," in proc.stdout  # a stream carries its pictures
    assert not (tmp_path / "piped_files").exists()
    proc = run(["-", "--to", "jsonl"], input=SAMPLE.read_text(encoding="utf-8"), cwd=tmp_path)
    assert proc.returncode == 0 and (tmp_path / "stdin.jsonl").is_file()


@pytest.mark.parametrize("args", [
    ["--to", "md", "-o", "-", str(SAMPLE), str(SAMPLE)],
    ["--to", "md,jsonl", "-o", "-", str(SAMPLE)],
    ["--to", "nope", str(SAMPLE)],
    [str(SAMPLE)],
    ["--to", "md"],
    ["--to", "md", "--pages", "3-1", str(SAMPLE)],
    ["--to", "md", "--images", "sideways", str(SAMPLE)],
])
def test_usage_errors_exit_2(args, capsys):
    with pytest.raises(SystemExit) as info:
        status = main(args)
        raise SystemExit(status)
    assert info.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_reserved_words_and_a_file_named_like_one(tmp_path):
    proc = run(["parse", "--to", "md"], cwd=tmp_path)  # the API subcommand wants documents
    assert proc.returncode == 2 and "xparse-convert parse" in proc.stderr
    shutil.copy(SAMPLE, tmp_path / "parse")
    proc = run(["./parse", "--to", "jsonl"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "parse.jsonl").is_file()


def test_info(tmp_path):
    proc = run(["info", SAMPLE, "--json"])
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["pages"] == 4 and summary["elements"] == 48
    assert summary["schema_version"] == "1.3.0"
    assert [(t["rows"], t["cols"], t["merged_cells"]) for t in summary["tables"]] == [
        (6, 6, 6), (38, 4, 1)]
    assert summary["tables"][1]["pages"] == [2, 3, 4]
    assert summary["images"]["with_data"] == 1 and summary["formulas"] == 1
    proc = run(["info", SAMPLE])
    assert proc.returncode == 0 and "tables          2" in proc.stdout


def test_version_and_formats():
    proc = run(["--version"])
    assert proc.returncode == 0 and proc.stdout.startswith("xparse-convert ")
    proc = run(["--list-formats"])
    assert proc.returncode == 0
    assert {line.split()[0] for line in proc.stdout.splitlines()} >= {"jsonl", "md"}


def test_warnings_are_grouped_capped_and_strict_fails(tmp_path):
    els = [element(f"e{i}", page="7") for i in range(50)]
    src = tmp_path / "w.json"
    src.write_text(json.dumps(envelope(els)), encoding="utf-8")
    proc = run([src, "--to", "jsonl", "-o", tmp_path / "o"])
    assert proc.returncode == 0
    warnings = [line for line in proc.stderr.splitlines() if ": warning: " in line]
    assert len(warnings) == 6  # five examples and a count line
    assert warnings[-1].endswith("45 more field-type warnings")
    assert run([src, "--to", "jsonl", "-o", tmp_path / "o", "--strict"]).returncode == 1
    assert run([src, "--to", "jsonl", "-o", tmp_path / "o", "--quiet"]).stderr == ""


def test_interrupt_exits_130(monkeypatch, capsys):
    import xparse_convert.cli.commands as cli

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_convert", boom)
    assert cli.main(["x", "--to", "md"]) == 130


def test_pages_and_types_options(tmp_path):
    assert main([str(SAMPLE), "--to", "jsonl", "-o", str(tmp_path), "--pages", "2-3",
                 "--exclude-types", "Header,Footer"]) == 0
    lines = [json.loads(line) for line in
             (tmp_path / "report.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {line["page_number"] for line in lines} == {2, 3}
    assert not {line["type"] for line in lines} & {"Header", "Footer"}


def test_no_traceback_on_unwritable_output(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = run([SAMPLE, "--to", "md", "-o", blocker / "sub"])
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(error_lines(proc.stderr)) == 1


def test_gzip_input_names_output_without_extensions(tmp_path):
    import gzip

    src = tmp_path / "result.json.gz"
    src.write_bytes(gzip.compress(SAMPLE.read_bytes()))
    assert main([str(src), "--to", "md"]) == 0
    assert (tmp_path / "result.md").is_file()
    assert Path(tmp_path / "result_files").is_dir()


def test_a_closed_pipe_is_not_an_error(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m xparse_convert.cli {SAMPLE} --to md -o - "
                          "| head -1", shell=True, capture_output=True, text=True, timeout=60)
    assert proc.stdout.startswith("# ") and proc.stderr == ""


def test_pictures_folder_is_shared_not_replaced(tmp_path):
    src = tmp_path / "report.json"
    shutil.copy(SAMPLE, src)
    assert main([str(src), "--to", "html", "--images", "files"]) == 0
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert main([str(src), "--to", "md", "--images", "none"]) == 0
    for link in re.findall(r'src="(report_files/[^"]+)"', html):
        assert (tmp_path / link).is_file()  # the HTML page still has its pictures


def test_a_blocked_target_changes_nothing(tmp_path, capsys):
    src = tmp_path / "report.json"
    shutil.copy(SAMPLE, src)
    (tmp_path / "report.md").mkdir()
    assert main([str(src), "--to", "html,md"]) == 1
    assert "a folder of that name" in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]
