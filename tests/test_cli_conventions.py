"""Habits people bring from pandoc and docling: ``-o`` names a file or a folder, repeated
``--to``, ``--name`` that stays inside ``-o``, options that select nothing say so, and the
messages of a run at a terminal."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import shutil
import struct
import subprocess
import sys
import termios
import zipfile

import pytest
from conftest import SAMPLE, element, envelope

CLI = [sys.executable, "-m", "xparse_convert.cli"]


def run(args, **kw):
    return subprocess.run(CLI + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120, **kw)


def run_on_terminal(args, cwd):
    """The CLI with its stderr on a 100-column terminal; returns (status, what it drew)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(CLI + [str(a) for a in args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def visible_lines(drawn: str) -> list[str]:
    """What each terminal line ends up showing: a carriage return redraws from the left."""
    return [line.split("\r")[-1] for line in drawn.replace("\r\n", "\n").split("\n")]


def stderr_lines(proc) -> list[str]:
    return proc.stderr.splitlines()


def warned(proc) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ": warning: " in line]


def with_warning(path, n=1):
    """A result whose one element has a string page number (a repaired value: a warning)."""
    path.write_text(json.dumps(envelope([element(f"e{i}", page="1") for i in range(n)])),
                    encoding="utf-8")
    return path


# -- -o: a file or a folder ------------------------------------------------------------------

def test_o_with_the_formats_extension_is_that_file(tmp_path):
    proc = run([SAMPLE, "-o", "out.docx", "--to", "docx"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out.docx").is_file() and zipfile.is_zipfile(tmp_path / "out.docx")
    # without --to the extension chooses the format
    proc = run([SAMPLE, "-o", tmp_path / "sub" / "alone.docx"])
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(tmp_path / "sub" / "alone.docx") as package:
        assert "word/document.xml" in package.namelist()
    # pictures go to <output stem>_files/, and the links point there
    proc = run([SAMPLE, "-o", "notes.md"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "](notes_files/img-" in (tmp_path / "notes.md").read_text(encoding="utf-8")
    assert any((tmp_path / "notes_files").iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.md", "notes_files", "out.docx", "sub"]


def test_o_is_a_folder_otherwise(tmp_path):
    (tmp_path / "exists.md").mkdir()
    for given in ("md-out/", "exists.md"):
        proc = run([SAMPLE, "--to", "md", "-o", given], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert (tmp_path / given / "report.md").is_file()
    # any other name is a folder too, so the format must be given
    proc = run([SAMPLE, "-o", "results.v2"], cwd=tmp_path)
    assert proc.returncode == 2 and "--to FMT is required" in proc.stderr


def test_stdin_to_an_output_file(tmp_path):
    proc = run(["-", "-o", "piped.jsonl"], input=SAMPLE.read_text(encoding="utf-8"),
               cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len((tmp_path / "piped.jsonl").read_text(encoding="utf-8").splitlines()) == 48


def test_a_file_o_with_batch_options_keeps_its_name(tmp_path):
    proc = run([SAMPLE, "-o", "capped.md", "--timeout", "60"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["capped.md", "capped_files"]


@pytest.mark.parametrize("args, says", [
    ([SAMPLE, "-o", "out.docx", "--to", "md"], "ends in .docx"),
    ([SAMPLE, "-o", "out.md", "--to", "md,html"], "2 formats"),
    ([SAMPLE, "-o", "out.md", "--to", "md", "--to", "html"], "2 formats"),
    ([SAMPLE, SAMPLE, "-o", "out.md"], "several inputs"),
    ([SAMPLE, "-o", "out.md", "--name", "other"], "both name the output"),
])
def test_a_file_o_that_cannot_be_is_a_usage_error(tmp_path, args, says):
    proc = run(args, cwd=tmp_path)
    assert proc.returncode == 2
    assert stderr_lines(proc) == [stderr_lines(proc)[0]] and says in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_file_o_with_a_folder_input_is_a_usage_error(tmp_path):
    (tmp_path / "in").mkdir()
    shutil.copy(SAMPLE, tmp_path / "in" / "a.json")
    proc = run(["in", "-o", "out.md"], cwd=tmp_path)
    assert proc.returncode == 2 and "several inputs" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


# -- --to ------------------------------------------------------------------------------------

def test_to_given_twice_means_both(tmp_path):
    proc = run([SAMPLE, "--to", "md", "--to", "jsonl,html", "-o", tmp_path])
    assert proc.returncode == 0, proc.stderr
    assert {"report.md", "report.jsonl", "report.html"} <= {p.name for p in tmp_path.iterdir()}


def test_jsonl_to_standard_output(tmp_path):
    proc = run([SAMPLE, "--to", "jsonl", "-o", "-"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(lines) == 48 and lines[0]["_schema"] == "xparse-convert.jsonl/1"
    proc = run([SAMPLE, "--to", "docx", "-o", "-"], cwd=tmp_path)
    assert proc.returncode == 2
    assert "one text format (chunks, html, jsonl, md, review)" in proc.stderr
    assert list(tmp_path.iterdir()) == []


# -- --name ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["../escaped", "/tmp/xparse-absolute-name"])
def test_name_never_leaves_o(tmp_path, name):
    out = tmp_path / "out"
    for src, stdin in (("-", SAMPLE.read_text(encoding="utf-8")), (SAMPLE, None)):
        proc = run([src, "--to", "md", "-o", out, "--name", name], input=stdin, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert len(stderr_lines(proc)) == 1 and "plain file name" in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert not os.path.exists("/tmp/xparse-absolute-name.md")


def test_name_applies_to_a_single_file_input(tmp_path):
    proc = run([SAMPLE, "--to", "md", "-o", tmp_path, "--name", "renamed"])
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "renamed.md").is_file() and not (tmp_path / "report.md").exists()
    proc = run([SAMPLE, SAMPLE, "--to", "md", "-o", tmp_path / "two", "--name", "x"])
    assert proc.returncode == 2 and "several" in proc.stderr
    assert not (tmp_path / "two").exists()


# -- options that select nothing say so -----------------------------------------------------

def test_an_unknown_type_name_lists_the_types(tmp_path):
    proc = run([SAMPLE, "--to", "md", "-o", tmp_path, "--types", "Title,Tabel"])
    assert proc.returncode == 2
    assert len(stderr_lines(proc)) == 1
    assert "'Tabel'" in proc.stderr and "NarrativeText" in proc.stderr and "button" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_type_name_in_another_case_is_read_with_a_note(tmp_path):
    proc = run([SAMPLE, "--to", "jsonl", "-o", tmp_path, "--types", "table", "--strict"])
    assert proc.returncode == 0, proc.stderr  # a note is not a warning
    assert "note: --types table: read as Table" in proc.stderr
    types = {json.loads(line)["type"] for line in
             (tmp_path / "report.jsonl").read_text(encoding="utf-8").splitlines()}
    assert types == {"Table"}


def test_a_filter_that_selects_nothing_warns(tmp_path):
    # `title` is a GUI-engine type: an exact match, and nothing in a document-engine result
    proc = run([SAMPLE, "--to", "md", "-o", tmp_path, "--types", "title"])
    assert proc.returncode == 0
    [line] = warned(proc)
    assert "--types title selected no element" in line and "did you mean Title" in line
    assert "note:" not in proc.stderr
    assert run([SAMPLE, "--to", "md", "-o", tmp_path, "--types", "title", "--strict"]
               ).returncode == 1
    # the GUI engine's own results: an exact match, no note, and it selects
    gui = tmp_path / "gui.json"
    gui.write_text(json.dumps(envelope([element("b1", "button", "OK"),
                                        element("t1", "title", "Login")])), encoding="utf-8")
    proc = run([gui, "--to", "jsonl", "-o", tmp_path, "--types", "title"])
    assert proc.returncode == 0
    assert "note:" not in proc.stderr and "selected no element" not in proc.stderr
    assert len((tmp_path / "gui.jsonl").read_text(encoding="utf-8").splitlines()) == 1


def test_pages_beyond_the_document_warn(tmp_path):
    proc = run([SAMPLE, "--to", "md", "-o", tmp_path, "--pages", "9-"])
    assert proc.returncode == 0
    [line] = warned(proc)
    assert "--pages 9- goes beyond the document's 4 pages" in line
    proc = run([SAMPLE, "--to", "md", "-o", tmp_path, "--pages", "1-2"])
    assert proc.returncode == 0 and warned(proc) == []


def test_md_source_engine_refuses_filters(tmp_path):
    for flag, value in (("--pages", "1"), ("--exclude-types", "Table")):
        proc = run([SAMPLE, "--to", "md", "-o", tmp_path, "--md-source", "engine", flag, value])
        assert proc.returncode == 2 and "--md-source engine" in proc.stderr
    assert list(tmp_path.iterdir()) == []
    assert run([SAMPLE, "--to", "docx", "-o", tmp_path, "--md-source", "engine", "--pages", "1"]
               ).returncode == 0  # no Markdown asked for: the option does not apply


def test_an_empty_input_folder_warns(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "notes.txt").write_text("not a result")
    proc = run(["empty", "--to", "md"], cwd=tmp_path)
    assert proc.returncode == 0
    assert warned(proc) == ["xparse-convert: warning: empty: no result files (*.json, "
                            "*.json.gz) in this folder"]
    assert run(["empty", "--to", "md", "--strict"], cwd=tmp_path).returncode == 1


# -- messages --------------------------------------------------------------------------------

def test_strict_quiet_still_says_why(tmp_path):
    src = with_warning(tmp_path / "w.json")
    proc = run([src, "--to", "md", "-o", tmp_path / "o", "--strict", "-q"])
    assert proc.returncode == 1
    assert "page_number '1' is a string" in proc.stderr
    assert "--strict" in stderr_lines(proc)[-1]
    assert run([src, "--to", "md", "-o", tmp_path / "o", "-q"]).stderr == ""


def test_memory_limit_is_explained_and_has_a_floor(tmp_path):
    help_text = " ".join(run(["--help"]).stdout.split())
    assert "address space" in help_text and "at least 256" in help_text
    proc = run([SAMPLE, "--to", "md", "-o", tmp_path, "--memory-limit", "100"])
    assert proc.returncode == 2 and "256" in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_debug_prints_each_warning_once(tmp_path):
    src = with_warning(tmp_path / "w.json")
    proc = run([src, "--to", "md", "-o", tmp_path / "o", "--debug"])
    assert proc.returncode == 0
    assert proc.stderr.count("page_number '1' is a string") == 1


def test_messages_stay_off_the_progress_bar_and_a_batch_ends_with_a_summary(tmp_path):
    (tmp_path / "in").mkdir()
    for name in "abc":
        with_warning(tmp_path / "in" / f"{name}.json")
    (tmp_path / "in" / "bad.json").write_text("{")
    status, drawn = run_on_terminal(["in", "--to", "md", "-o", "out", "--jobs", "1"], tmp_path)
    assert status == 1
    assert "file/s" in drawn  # the bar was there
    lines = [line for line in visible_lines(drawn) if "xparse-convert:" in line]
    assert len(lines) == 5, drawn
    assert all(line.startswith("xparse-convert: ") for line in lines), lines
    assert lines[-1].startswith("xparse-convert: 3 converted, 1 failed, 0 skipped in ")
    assert lines[-1].endswith(" s")
    # no terminal, no summary
    proc = run(["in", "--to", "md", "-o", "out2"], cwd=tmp_path)
    assert "converted" not in proc.stderr and len(stderr_lines(proc)) == 4


def test_help_lists_the_subcommands_and_the_picture_defaults(tmp_path):
    text = " ".join(run(["--help"]).stdout.split())
    assert "parse DOCUMENT" in text and "fetch JOB_ID" in text and "info INPUT" in text
    assert "default: embed for docx and html, files for md" in text
    # and the defaults are what it says
    assert run([SAMPLE, "--to", "docx,html,md", "-o", tmp_path]).returncode == 0
    with zipfile.ZipFile(tmp_path / "report.docx") as package:
        assert any(n.startswith("word/media/") for n in package.namelist())  # embed
    assert 'src="data:image/' in (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "](report_files/" in (tmp_path / "report.md").read_text(encoding="utf-8")


def test_info_on_a_folder_is_one_line_per_input(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE, tmp_path / "in" / "a.json")
    shutil.copy(SAMPLE, tmp_path / "in" / "sub" / "b.json")
    proc = run(["info", "in"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"{os.path.join('in', name)}: envelope 1.3.0, 4 pages, 48 elements, 2 tables, "
        "1 image, 1 formula, 0 warnings" for name in ("a.json", os.path.join("sub", "b.json"))]
    summaries = json.loads(run(["info", "in", "--json"], cwd=tmp_path).stdout)
    assert [s["elements"] for s in summaries] == [48, 48]


@pytest.mark.parametrize("name", ["sub/inner", "..", "a\\b", ""])
def test_check_stem_refuses_folder_parts(name):
    from xparse_convert.convert import check_stem
    from xparse_convert.errors import UsageError

    with pytest.raises(UsageError):
        check_stem(name)
