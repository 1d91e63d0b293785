"""The async API client against a local server that follows the documented contract."""

from __future__ import annotations

import json
import os
import pty
import random
import re
import select
import shlex
import signal
import stat
import subprocess
import sys
import time
import zipfile

import pytest
from conftest import SAMPLE
from fake_api import APP_ID, SECRET, FakeApi

from xparse_convert.api import Backoff, Client, NetworkError, fetch_and_convert, parse_and_convert
from xparse_convert.codes import API_CODES, RETRYABLE_CODES
from xparse_convert.errors import ApiError, UsageError

pytest.importorskip("httpx")


@pytest.fixture
def api():
    server = FakeApi()
    server.behaviour.result = SAMPLE.read_bytes()
    yield server
    server.close()


class Clock:
    """Time that passes only when the client sleeps: retry tests run in milliseconds."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def client_for(api, clock=None, **kw):
    clock = clock or Clock()
    return Client(APP_ID, SECRET, api.base_url, clock=clock,
                  backoff=Backoff(sleep=clock.sleep, rng=random.Random(1)), **kw)


@pytest.fixture
def document(tmp_path):
    path = tmp_path / "galaxy report.pdf"
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(300_000))
    return path


def test_happy_path_end_to_end(api, document, tmp_path):
    clock = Clock()
    with client_for(api, clock) as client:
        report = parse_and_convert(client, str(document), ["docx", "md"], str(tmp_path / "out"),
                                   config={"capabilities": {"include_table_structure": True}},
                                   page_range="1-4", password="pw", webhook="https://h/cb")
    assert report.ok and report.pages == 4
    assert (tmp_path / "out" / "galaxy report.docx").is_file()
    assert (tmp_path / "out" / "galaxy report.json").read_bytes() == SAMPLE.read_bytes()
    job = next(iter(api.jobs.values()))
    assert job.fields["file"]["data"] == document.read_bytes()
    assert job.fields["file"]["filename"] == "galaxy report.pdf"
    config = json.loads(job.fields["config"]["data"])
    assert job.fields["config"]["content_type"] == "application/json"
    assert config == {"capabilities": {"include_table_structure": True},
                      "scope": {"page_range": "1-4"}, "document": {"password": "pw"}}
    assert job.fields["webhook"]["data"] == b"https://h/cb"
    assert job.polls == 3 and len(clock.sleeps) == 2  # pending, in_progress, completed
    # credentials went to the API host only, never to the result host
    for host, _, headers in api.requests:
        keys = {k.lower() for k in headers}
        if host == "api":
            assert headers.get("x-ti-app-id") == APP_ID
        else:
            assert "x-ti-app-id" not in keys and "x-ti-secret-code" not in keys


def test_rate_limit_and_faults_are_retried(api, document, tmp_path):
    api.behaviour.submit_codes = [40306, 30203, 500]
    clock = Clock()
    with client_for(api, clock) as client:
        job_id = client.submit(document)
    assert job_id == "job0001" and len(api.submits()) == 4
    assert len(clock.sleeps) == 3 and clock.now < 30  # backed off, bounded


def test_retries_are_bounded(api, document):
    api.behaviour.submit_codes = [40306] * 10
    with client_for(api, retries=3) as client, pytest.raises(ApiError) as info:
        client.submit(document)
    assert info.value.code == 40306 and len(api.submits()) == 4
    assert "rate limit" in info.value.message


@pytest.mark.parametrize("code", sorted(c for c in API_CODES if c not in (200, 50207)))
def test_every_documented_code_is_one_line(api, document, code):
    api.behaviour.submit_codes = [code] * 10
    with client_for(api, retries=2) as client, pytest.raises(ApiError) as info:
        client.submit(document)
    message = info.value.one_line()
    assert f"code {code}: {API_CODES[code]}" in message and "\n" not in message
    assert SECRET not in message
    assert len(api.submits()) == (3 if code in RETRYABLE_CODES else 1)


def test_wrong_credentials(api, document):
    with Client(APP_ID, "wrong", api.base_url) as client, pytest.raises(ApiError) as info:
        client.submit(document)
    assert info.value.code == 40102 and "wrong" not in info.value.message
    with pytest.raises(ApiError, match="credentials missing"):
        Client("", "", api.base_url)


def test_failed_and_unknown_statuses_are_terminal(api, document):
    api.behaviour.final_status = "failed"
    with client_for(api) as client:
        job = client.submit(document)
        with pytest.raises(ApiError, match="failed: the document could not be parsed"):
            client.wait(job)
    api.behaviour.final_status = "stopped"
    with client_for(api) as client:
        job = client.submit(document)
        with pytest.raises(ApiError, match="ended with status 'stopped'"):
            client.wait(job)


def test_poll_timeout(api, document):
    api.behaviour.polls_before_done = 10**6
    clock = Clock()
    with client_for(api, clock) as client:
        job = client.submit(document)
        with pytest.raises(TimeoutError, match=f"fetch {job}"):
            client.wait(job, poll_timeout=60)
    assert 60 <= clock.now < 80


@pytest.mark.parametrize("mode", ["truncated", "short", "drop"])
def test_broken_downloads_leave_nothing(api, document, tmp_path, mode):
    api.behaviour.download = mode
    with client_for(api, retries=2) as client:
        job = client.submit(document)
        url = client.wait(job)
        with pytest.raises(NetworkError):
            client.download(url, tmp_path / "out" / "r.json")
    assert list((tmp_path / "out").iterdir()) == []
    api.behaviour.download_failures = 1  # one broken answer, then a good one: retried
    with client_for(api, retries=2) as client:
        path = client.download(url, tmp_path / "out" / "r.json")
    assert path.read_bytes() == SAMPLE.read_bytes()


def test_partial_result_converts_with_a_warning(api, document, tmp_path):
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    doc["code"] = 50207
    api.behaviour.result = json.dumps(doc, ensure_ascii=False).encode()
    with client_for(api) as client:
        report = parse_and_convert(client, str(document), ["md"], str(tmp_path))
    assert report.ok and any("50207" in w for w in report.warnings)


def test_fetch_names_outputs_from_the_result(api, document, tmp_path):
    with client_for(api) as client:
        job = client.submit(document)
        report = fetch_and_convert(client, job, ["xlsx"], str(tmp_path))
    assert report.ok
    assert (tmp_path / "galaxy-q3-report.json").is_file()
    assert (tmp_path / "galaxy-q3-report.xlsx").is_file()


def test_conversion_failure_keeps_the_paid_result(api, document, tmp_path):
    api.behaviour.result = b'{"code": 200, "data": {"markdown": "no elements"}}'
    with client_for(api) as client:
        report = parse_and_convert(client, str(document), ["md"], str(tmp_path))
    assert not report.ok and "no element list" in report.error
    assert (tmp_path / "galaxy report.json").is_file()
    assert not (tmp_path / "galaxy report.md").exists()


def cli(args, api, env_extra=None, **kw):
    env = dict(os.environ, XPARSE_APP_ID=APP_ID, XPARSE_SECRET_CODE=SECRET,
               XPARSE_API_BASE=api.base_url)
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "xparse_convert.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120, **kw)


def test_cli_parse_a_folder_and_fetch(api, tmp_path):
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    for name in ("a.pdf", "b.png", "sub/a.pdf"):
        (docs / name).write_bytes(b"x" * 1000)
    (docs / "notes.bin").write_bytes(b"ignored")
    out = tmp_path / "out"
    proc = cli(["parse", docs, "--to", "docx,xlsx", "-o", out, "--pages", "1-2",
                "--poll-interval", "0.01"], api)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_file()) == [
        "a.docx", "a.json", "a.xlsx", "b.docx", "b.json", "b.xlsx"]
    assert sorted(p.name for p in (out / "sub").iterdir()) == ["a.docx", "a.json", "a.xlsx"]
    assert SECRET not in proc.stderr + proc.stdout and APP_ID not in proc.stderr + proc.stdout
    job = next(iter(api.jobs))
    proc = cli(["fetch", job, "--to", "md", "-o", tmp_path / "f", "--name", "mine"], api)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "f" / "mine.md").is_file()


def test_cli_errors_are_one_line_without_secrets(api, tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"x")
    api.behaviour.submit_codes = [40003]
    proc = cli(["parse", tmp_path / "a.pdf", "--to", "md"], api)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "40003" in errors[0] and "insufficient balance" in errors[0]
    assert SECRET not in proc.stderr and "Traceback" not in proc.stderr
    proc = cli(["parse", tmp_path / "a.pdf", "--to", "md"], api,
               env_extra={"XPARSE_APP_ID": "", "XPARSE_SECRET_CODE": ""})
    assert proc.returncode == 2 and "credentials missing" in proc.stderr


def test_ctrl_c_while_polling_names_the_job(api, tmp_path):
    api.behaviour.polls_before_done = 10**6
    (tmp_path / "a.pdf").write_bytes(b"x")
    env = dict(os.environ, XPARSE_APP_ID=APP_ID, XPARSE_SECRET_CODE=SECRET)
    proc = subprocess.Popen([sys.executable, "-m", "xparse_convert.cli", "parse",
                             str(tmp_path / "a.pdf"), "--to", "md", "--api-base", api.base_url,
                             "--poll-interval", "0.05"], stderr=subprocess.PIPE, text=True,
                            env=env)
    line = proc.stderr.readline()
    assert "job job0001 submitted" in line
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 130
    assert "fetch job0001 --to md" in rest


def test_parse_never_overwrites_its_documents(api, tmp_path):
    doc = tmp_path / "report.docx"
    doc.write_bytes(b"original")
    proc = cli(["parse", doc, "--to", "docx"], api)
    assert proc.returncode == 2 and "overwrite the document" in proc.stderr
    assert doc.read_bytes() == b"original" and not api.jobs  # nothing was even submitted
    (tmp_path / "a.pdf").write_bytes(b"x")
    (tmp_path / "a.png").write_bytes(b"x")
    proc = cli(["parse", tmp_path / "a.pdf", tmp_path / "a.png", "--to", "md", "-o",
                tmp_path / "out"], api)
    assert proc.returncode == 2 and "would both write" in proc.stderr


def test_credentials_never_go_over_plain_http_to_the_same_host(api):
    client = Client(APP_ID, SECRET, "https://api.example.com")
    assert client._headers_for("https://api.example.com/x")["x-ti-secret-code"] == SECRET
    assert client._headers_for("http://api.example.com/x") == {}
    assert client._headers_for("https://files.example.com/x") == {}
    client.close()


def test_a_compressed_download_is_checked_by_its_wire_length(tmp_path):
    import gzip as gz

    import httpx

    body = gz.compress(SAMPLE.read_bytes())

    def handler(request):
        return httpx.Response(200, stream=httpx.ByteStream(body), headers={
            "Content-Encoding": "gzip", "Content-Length": str(len(body))})

    with Client(APP_ID, SECRET, "https://api.example.com",
                transport=httpx.MockTransport(handler)) as client:
        path = client.download("https://files.example.com/r", tmp_path / "r.json")
    assert path.read_bytes() == SAMPLE.read_bytes()


# -- bounded by time and size, whatever the server does ----------------------------------
MEASURED = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:]); "
            "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
            "sys.exit(p.returncode)")


def cli_timed(args, api, measure=False, timeout=30):
    """The command line's result, its wall time, and (``measure``) its peak memory in MB."""
    env = dict(os.environ, XPARSE_APP_ID=APP_ID, XPARSE_SECRET_CODE=SECRET,
               XPARSE_API_BASE=api.base_url)
    command = [sys.executable, "-m", "xparse_convert.cli", *map(str, args)]
    if measure:
        command = [sys.executable, "-c", MEASURED, *command]
    started = time.monotonic()
    proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    elapsed = time.monotonic() - started
    peak = None
    if measure:
        peak = int(proc.stdout.split("maxrss_kb")[-1]) / 1024
    assert SECRET not in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    return proc, elapsed, peak


def error_lines(proc):
    return [line for line in proc.stderr.splitlines() if ": error: " in line]


@pytest.mark.parametrize("answer_to", ["submit", "status"])
def test_cli_a_dripping_server_ends_by_the_poll_timeout(api, tmp_path, answer_to):
    # one byte every 0.5 s: every read succeeds, so only an overall deadline ends it
    api.behaviour.answer, api.behaviour.answer_to = "drip", answer_to
    (tmp_path / "a.pdf").write_bytes(b"x")
    proc, elapsed, _ = cli_timed(["parse", tmp_path / "a.pdf", "--to", "md", "--poll-timeout",
                                  "1", "--poll-interval", "0.05", "-o", tmp_path / "out"],
                                 api)
    assert proc.returncode == 1 and elapsed < 8, proc.stderr
    [line] = error_lines(proc)
    if answer_to == "submit":
        assert "submitting a.pdf: no job id within 1 s" in line
    else:
        assert "no status within 1 s; fetch it later with 'xparse-convert fetch job0001'" \
            in line


def test_each_status_request_has_an_overall_deadline(api, document):
    api.behaviour.answer = "drip"
    with client_for(api, retries=1, status_timeout=0.4) as client:
        job = client.submit(document)
        started = time.monotonic()
        with pytest.raises(NetworkError, match=f"job {job}: ReadTimeout"):
            client.status(job)
    assert time.monotonic() - started < 3  # two attempts of 0.4 s, not 60 s a byte


def test_cli_an_endless_status_answer_is_refused_in_bounded_memory(api, tmp_path):
    api.behaviour.answer = "endless"
    (tmp_path / "a.pdf").write_bytes(b"x")
    proc, elapsed, peak = cli_timed(["parse", tmp_path / "a.pdf", "--to", "md", "-o",
                                     tmp_path / "out"], api, measure=True)
    assert proc.returncode == 1 and elapsed < 15, proc.stderr
    [line] = error_lines(proc)
    assert "job job0001: the API's answer is over 4 MB; refused" in line
    assert peak < 100, peak  # the cap, not the body (a normal parse peaks near 40 MB)
    assert api.sent < 64 << 20  # the client hung up instead of reading on


def test_cli_an_endless_download_stops_at_max_download_mb(api, tmp_path):
    api.behaviour.download = "endless"
    (tmp_path / "a.pdf").write_bytes(b"x")
    out = tmp_path / "out"
    proc, elapsed, _ = cli_timed(["parse", tmp_path / "a.pdf", "--to", "md", "-o", out,
                                  "--max-download-mb", "1", "--poll-interval", "0.01"], api)
    assert proc.returncode == 1 and elapsed < 15, proc.stderr
    [line] = error_lines(proc)
    assert "over the 1 MB limit (--max-download-mb); nothing kept" in line
    assert not out.exists() or list(out.iterdir()) == []  # no result, no temporary file
    assert api.sent < 64 << 20
    proc, _, _ = cli_timed(["parse", tmp_path / "a.pdf", "--to", "md", "--max-download-mb",
                            "0"], api)
    assert proc.returncode == 2 and "--max-download-mb takes a positive number" in proc.stderr


def test_a_declared_size_over_the_limit_is_refused_before_reading(tmp_path):
    import httpx

    from xparse_convert.api import TooLarge

    def handler(request):
        return httpx.Response(200, stream=httpx.ByteStream(b"{}"),
                              headers={"Content-Length": str(5 << 30)})

    with Client(APP_ID, SECRET, "https://api.example.com", max_download_mb=4096,
                transport=httpx.MockTransport(handler)) as client, pytest.raises(TooLarge):
        client.download("https://files.example.com/r", tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


def test_a_stalled_download_ends_after_the_stall_timeout(api, document, tmp_path):
    with client_for(api) as client:
        url = client.wait(client.submit(document))
    api.behaviour.download = "stall"
    started = time.monotonic()
    with client_for(api, retries=1, stall_timeout=0.3) as client, \
            pytest.raises(NetworkError, match="ReadTimeout"):
        client.download(url, tmp_path / "out" / "r.json")
    assert time.monotonic() - started < 5  # two stalls of 0.3 s
    assert list((tmp_path / "out").iterdir()) == []


# -- names the server chooses ----------------------------------------------------------------
def test_cli_a_job_id_that_climbs_out_is_refused(api, tmp_path):
    api.behaviour.job_id = "../ESCAPED"
    out = tmp_path / "box" / "out"
    out.mkdir(parents=True)
    # a URL with an empty path: the job id would have named the result
    proc, _, _ = cli_timed(["parse", "https://docs.example.com", "--to", "md", "-o", out,
                            "--poll-interval", "0.01"], api)
    assert proc.returncode == 1, proc.stderr
    [line] = error_lines(proc)
    assert "the API answered with the job id '../ESCAPED', not 1 to 128 letters" in line
    assert [p for p in (tmp_path / "box").rglob("*") if p != out] == []
    assert [r for r in api.requests if r[0] == "api" and "/parse/async/" in r[1]] == []


@pytest.mark.parametrize("job_id", ["../../admin/steal?x=", "j" * 129, "job 1",
                                    "ok\x1b[2J\u202e", 12345])
def test_a_bad_job_id_from_the_server_is_refused(api, document, job_id):
    api.behaviour.job_id = job_id
    with client_for(api) as client, pytest.raises(ApiError, match="refused") as info:
        client.submit(document)
    assert "\x1b" not in info.value.message and "\u202e" not in info.value.message
    assert [r for r in api.requests if "/parse/async/" in r[1]] == []  # never polled


def test_cli_fetch_refuses_a_bad_job_id_argument(api, tmp_path):
    proc, _, _ = cli_timed(["fetch", "../../admin/steal?x=", "--to", "md", "-o", tmp_path], api)
    assert proc.returncode == 2 and len(error_lines(proc)) == 1, proc.stderr
    assert "is not a job id (1 to 128 letters, digits, _ or -)" in proc.stderr
    assert api.requests == []  # nothing was sent
    with client_for(api) as client:
        for job_id in ("a/b", "", "j" * 129, "..", "é"):
            with pytest.raises(UsageError, match="is not a job id"):
                fetch_and_convert(client, job_id, ["md"], str(tmp_path))
    assert api.requests == [] and list(tmp_path.iterdir()) == []


def test_job_ids_are_url_encoded_in_request_paths(api, document):
    with client_for(api) as client:
        job = client.submit(document)
        client.wait(job)
    from urllib.parse import quote

    from xparse_convert.api import STATUS_PATH

    paths = {r[1] for r in api.requests if r[0] == "api" and r[1] != "/api/v1/xparse/parse/async"}
    assert paths == {STATUS_PATH.format(job_id=quote(job, safe=""))}
    with client_for(api) as client, pytest.raises(UsageError, match="is not a job id"):
        client.status("../x")


def test_cli_a_result_url_that_is_not_a_string_is_one_clean_line(api, tmp_path):
    api.behaviour.result_url = {"url": "https://x"}
    (tmp_path / "a.pdf").write_bytes(b"x")
    proc, _, _ = cli_timed(["parse", tmp_path / "a.pdf", "--to", "md", "-o", tmp_path / "o",
                            "--poll-interval", "0.01"], api)
    assert proc.returncode == 1, proc.stderr
    [line] = error_lines(proc)
    assert "job job0001: the API's result_url is dict, not a string; refused" in line


@pytest.mark.parametrize("result_url, message", [
    (12345, "the API's result_url is int, not a string; refused"),
    ("file:///etc/passwd", "the result_url 'file:///etc/passwd' is not an http(s) URL"),
])
def test_a_bad_result_url_is_refused(api, document, tmp_path, result_url, message):
    api.behaviour.result_url = result_url
    with client_for(api) as client, pytest.raises(ApiError, match=re.escape(message)):
        parse_and_convert(client, str(document), ["md"], str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_cli_names_from_urls_are_safe_and_never_clash(api, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("an earlier result")  # never replaced
    urls = ["https://a.example/x/report.pdf", "https://b.example/y/report.pdf",
            "https://c.example/%2E%2E%2F%2E%2E%2Fup%E2%80%AE%1B%5B2J.pdf",
            "https://d.example/.hidden.pdf"]
    proc, _, _ = cli_timed(["parse", *urls, "--to", "md", "-o", out, "--poll-interval",
                            "0.01"], api)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir() if not p.name.endswith("_files"))
    assert names == sorted(["report.json", "report-2.json", "report-2.md", "report-3.json",
                            "report-3.md", "up__[2J.json", "up__[2J.md", "hidden.json",
                            "hidden.md"])
    assert (out / "report.json").read_text() == "an earlier result"
    assert [p for p in tmp_path.rglob("*") if out not in p.parents and p != out] == []


def test_cli_fetch_names_from_a_hostile_file_name_stay_inside(api, document, tmp_path):
    doc = json.loads(SAMPLE.read_text(encoding="utf-8"))
    doc["data"]["metadata"]["filename"] = "../..\\.\u202eevil\x1b[2J" + "é" * 150 + ".pdf"
    api.behaviour.result = json.dumps(doc, ensure_ascii=False).encode()
    with client_for(api) as client:
        job = client.submit(document)
    out = tmp_path / "out"
    proc, _, _ = cli_timed(["fetch", job, "--to", "md", "-o", out], api)
    assert proc.returncode == 0, proc.stderr
    stem = "_._evil_[2J" + "é" * 94  # cut to 200 bytes at a character boundary
    assert len(stem.encode()) == 199
    assert sorted(p.name for p in out.iterdir()) == [f"{stem}.json", f"{stem}.md",
                                                     f"{stem}_files"]
    assert sorted(p for p in tmp_path.rglob("*") if out not in p.parents) == [document, out]


# -- the -o rule of conversions ------------------------------------------------------------
def test_cli_o_names_a_file_and_the_result_goes_beside_it(api, tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"x")
    out = tmp_path / "out"
    # without --to, the extension chooses the format
    proc = cli(["parse", tmp_path / "a.pdf", "-o", out / "r.docx", "--poll-interval", "0.01"],
               api)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["r.docx", "r.json"]
    assert (out / "r.json").read_bytes() == SAMPLE.read_bytes()
    assert zipfile.is_zipfile(out / "r.docx")
    job = next(iter(api.jobs))
    proc = cli(["fetch", job, "--to", "md", "-o", tmp_path / "f" / "x.md"], api)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["x.json", "x.md", "x_files"]
    # -o -: the text on standard output, the result where it goes without -o
    proc = cli(["parse", tmp_path / "a.pdf", "--to", "md", "-o", "-", "--poll-interval",
                "0.01"], api)
    assert proc.returncode == 0, proc.stderr
    written = (tmp_path / "f" / "x.md").read_text(encoding="utf-8")
    assert proc.stdout.splitlines()[0] == written.splitlines()[0]
    assert "](data:image/" in proc.stdout and "x_files/" in written  # a stream embeds
    assert (tmp_path / "a.json").read_bytes() == SAMPLE.read_bytes()


@pytest.mark.parametrize("args, message", [
    (["parse", "{a}", "-o", "{out}/r.docx", "--to", "md"],
     "-o {out}/r.docx ends in .docx, but --to asks for md"),
    (["parse", "{a}", "-o", "{out}/r.docx", "--to", "docx,md"], "--to asks for 2 formats"),
    (["parse", "{a}", "{a}", "-o", "{out}/r.docx"], "but there are several inputs"),
    (["parse", "{docs}", "-o", "{out}/r.docx"], "but there are several inputs"),
    (["fetch", "j1", "j2", "-o", "{out}/r.md"], "but there are several inputs"),
    (["fetch", "j1", "--name", "n", "-o", "{out}/r.md"], "--name and -o {out}/r.md both name"),
])
def test_cli_a_file_o_that_cannot_be_is_a_usage_error(api, tmp_path, args, message):
    (tmp_path / "a.pdf").write_bytes(b"x")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "only.pdf").write_bytes(b"x")  # a folder counts as several
    where = {"a": tmp_path / "a.pdf", "docs": tmp_path / "docs", "out": tmp_path / "out"}
    proc = cli([a.format(**where) for a in args], api)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and message.format(**where) in proc.stderr
    assert api.requests == [] and not (tmp_path / "out").exists()


def test_cli_downloaded_results_get_the_mode_of_every_output(api, tmp_path):
    (tmp_path / "a.pdf").write_bytes(b"x")
    out = tmp_path / "out"
    proc = cli(["parse", tmp_path / "a.pdf", "--to", "md", "-o", out, "--poll-interval",
                "0.01"], api, umask=0o022)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE((out / "a.json").stat().st_mode) == 0o644
    assert stat.S_IMODE((out / "a.md").stat().st_mode) == 0o644


# -- Ctrl-C and SIGTERM ------------------------------------------------------------------------
PROMISE = 2.0  # seconds from the signal to the exit, as the README promises
MARGIN = 2.0  # a loaded test machine is slower than a user's


def start(args, api):
    env = dict(os.environ, XPARSE_APP_ID=APP_ID, XPARSE_SECRET_CODE=SECRET,
               XPARSE_API_BASE=api.base_url)
    return subprocess.Popen([sys.executable, "-m", "xparse_convert.cli", *map(str, args)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for(ready, proc, timeout=20.0):
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never got there"
        time.sleep(0.02)


def stop(proc, signum, times=3):
    """Send ``signum`` ``times`` times (a user pressing Ctrl-C again); the exit status, the
    seconds from the first signal to the exit, and stderr."""
    started = time.monotonic()
    for _ in range(times):
        proc.send_signal(signum)
        time.sleep(0.05)
    _, err = proc.communicate(timeout=30)
    return proc.returncode, time.monotonic() - started, err


def resume_commands(err):
    """``{document or job: the resume command}`` from an interrupted run's messages."""
    found = re.findall(r"job (\w+)(?: \((.*)\))?: resume with: (.*)", err)
    return {document or job: command for job, document, command in found}


def test_cli_interrupting_parse_dir_stops_and_says_how_to_resume(api, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    for name in "abcd":
        (docs / f"{name}.pdf").write_bytes(b"x" * 1000)
    out = tmp_path / "out"
    api.behaviour.polls_before_done = 0
    api.behaviour.download = "stall"  # two downloads hang, their temporary files open
    proc = start(["parse", docs, "--to", "md", "-o", out, "--concurrency", "2",
                  "--poll-interval", "0.01"], api)
    wait_for(lambda: len(list(out.glob(".*.tmp"))) == 2, proc)
    code, elapsed, err = stop(proc, signal.SIGINT)
    assert code == 130 and elapsed < PROMISE + MARGIN, (elapsed, err)
    assert "Traceback" not in err
    assert ("interrupted (SIGINT): 2 jobs submitted and not finished, 2 documents not "
            "submitted") in err
    commands = resume_commands(err)
    assert sorted(commands) == [str(docs / "a.pdf"), str(docs / "b.pdf")], err
    assert list(out.iterdir()) == []  # no temporary file is left
    time.sleep(0.2)
    assert len(api.jobs) == 2  # c and d were never submitted
    # the command printed finishes the job as the parse would have
    api.behaviour.download = "ok"
    words = shlex.split(commands[str(docs / "b.pdf")])
    assert words[:2] == ["xparse-convert", "fetch"]
    proc = cli(words[1:], api)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["b.json", "b.md", "b_files"]


@pytest.mark.parametrize("command, signum", [("parse", signal.SIGTERM),
                                             ("fetch", signal.SIGINT)])
def test_cli_interrupting_one_job_stops_and_says_how_to_resume(api, document, tmp_path,
                                                                command, signum):
    out = tmp_path / "out"
    if command == "parse":
        api.behaviour.polls_before_done = 10**6  # the job stays in progress
        proc = start(["parse", document, "--to", "md", "-o", out, "--poll-interval", "0.05"],
                     api)
        wait_for(lambda: api.jobs and api.jobs["job0001"].polls >= 2, proc)
    else:
        api.behaviour.polls_before_done = 0
        with client_for(api) as client:
            client.submit(document)
        api.behaviour.download = "stall"
        proc = start(["fetch", "job0001", "--to", "md", "-o", out], api)
        wait_for(lambda: len(list(out.glob(".*.tmp"))) == 1, proc)
    code, elapsed, err = stop(proc, signum)
    assert code == 128 + signum and elapsed < PROMISE + MARGIN, (elapsed, err)
    assert "Traceback" not in err
    assert f"interrupted ({signal.Signals(signum).name}): 1 " in err
    [resume] = resume_commands(err).values()
    assert resume.startswith(f"xparse-convert fetch job0001 --to md -o {out}")
    assert not out.exists() or list(out.iterdir()) == []


# -- what reaches the terminal ---------------------------------------------------------------
def test_cli_names_and_server_messages_are_shown_not_obeyed(api, tmp_path):
    hostile = tmp_path / "evil\x1b[2J\rforged.pdf"
    hostile.write_bytes(b"x")
    (tmp_path / "b.pdf").write_bytes(b"x")
    api.behaviour.final_status_of = {"job0002": "failed"}
    api.behaviour.fail_message = "no\x1b[2J\rway"
    env = dict(os.environ, XPARSE_APP_ID=APP_ID, XPARSE_SECRET_CODE=SECRET,
               XPARSE_API_BASE=api.base_url)
    proc = subprocess.run([sys.executable, "-m", "xparse_convert.cli", "parse", str(hostile),
                           str(tmp_path / "b.pdf"), "--to", "md", "-o", str(tmp_path / "out"),
                           "--concurrency", "1", "--poll-interval", "0.01"],
                          capture_output=True, env=env, timeout=60)
    err = proc.stderr.decode()  # bytes: text mode would turn a \r into a line end
    assert proc.returncode == 1, err
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    assert any(line.endswith("evil\\x1b[2J\\rforged.pdf: job job0001 submitted")
               for line in lines), err
    assert any(" wrote " in line and "evil\\x1b[2J\\rforged.md" in line for line in lines)
    assert any(": error: " in line and "job job0002 failed: no\\x1b[2J\\rway" in line
               for line in lines), err


def test_cli_status_lines_on_a_terminal_show_server_words_escaped(api, tmp_path):
    api.behaviour.final_status = "stuck\x1b[2J\rforged"  # what the status line shows
    (tmp_path / "a.pdf").write_bytes(b"x")
    env = dict(os.environ, XPARSE_APP_ID=APP_ID, XPARSE_SECRET_CODE=SECRET,
               XPARSE_API_BASE=api.base_url)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "xparse_convert.cli", "parse",
                             str(tmp_path / "a.pdf"), "--to", "md", "-o", str(tmp_path / "out"),
                             "--poll-interval", "0.01"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if not select.select([master], [], [], 0.2)[0]:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.wait(timeout=30) == 1
    text = seen.decode()
    assert "job job0001: pending" in text  # status lines were drawn
    assert "\x1b" not in text and "stuck\\x1b[2J\\rforged" in text, text
