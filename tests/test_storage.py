"""URL inputs and outputs against real servers on loopback: a local S3 server (moto in server
mode, talked to by the real s3fs client) and a local HTTP server, both started once per
session by the fixtures below."""

from __future__ import annotations

import gzip
import http.server
import importlib.util
import io
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
import zipfile
from pathlib import Path

import pytest
from conftest import SAMPLE, element, envelope

from xparse_convert.cli import main

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")

CLI = [sys.executable, "-m", "xparse_convert.cli"]
SECRET = "s3cr3t-Signature-value"


@pytest.fixture(scope="session")
def s3_endpoint():
    """A local S3 server for the session; the environment points every client at it, the
    way a user points them at MinIO (``AWS_ENDPOINT_URL``)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID",
                                             "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing",
                      AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    try:
        yield endpoint
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        server.stop()


@pytest.fixture
def bucket(s3_endpoint):
    """A fresh bucket and a boto3 client to look into it as a user would."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"b-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return name, client


@pytest.fixture
def notes(caplog):
    """The package's log lines (``note: ...``), whatever earlier tests did to logging (a
    library's ``dictConfig`` disables the loggers that exist; a handler on the way to the
    root may swallow them)."""
    logger = logging.getLogger("xparse_convert")
    saved = logger.disabled, logger.level
    logger.disabled = False
    logger.setLevel(logging.INFO)
    logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        logger.removeHandler(caplog.handler)
        logger.disabled, logger.level = saved


def keys(client, name: str) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=name).get("Contents", []))


def pending_uploads(client, name: str) -> list[str]:
    return [u["Key"] for u in client.list_multipart_uploads(Bucket=name).get("Uploads", [])]


def body(client, name: str, key: str) -> bytes:
    return client.get_object(Bucket=name, Key=key)["Body"].read()


def run(args, timeout=120, **kw):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout, **kw)


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Files from the served folder; ``/stall...`` sends a result's first bytes and then
    nothing, as a hung server does."""

    def do_GET(self) -> None:  # noqa: N802
        if self.path.startswith("/stall"):
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(json.dumps(envelope([element(f"e{i}") for i in range(50)]))
                             .encode()[:-3])
            self.wfile.flush()
            time.sleep(30)
            return
        self.path = self.path.split("?", 1)[0]
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def web(tmp_path_factory):
    """A local HTTP server for the session: (base URL, served folder)."""
    folder = tmp_path_factory.mktemp("web")
    shutil.copy(SAMPLE, folder / "report.json")

    class Handler(_Handler):
        def __init__(self, *args, **kw):
            super().__init__(*args, directory=str(folder), **kw)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()


# -- S3: single inputs, prefixes, outputs -----------------------------------------------------

def cli(args, capsys) -> tuple[int, str, str]:
    """The command line in this process: (exit status, stdout, stderr)."""
    status = main(args)
    out, err = capsys.readouterr()
    return status, out, err


def test_object_to_bucket_with_pictures_uploaded_beside_it(bucket, tmp_path, capsys,
                                                           monkeypatch):
    name, client = bucket
    monkeypatch.chdir(tmp_path)
    client.upload_file(str(SAMPLE), name, "in/report.json")
    status, _, err = cli([f"s3://{name}/in/report.json", "--to", "docx,md", "--images",
                          "files", "-o", f"s3://{name}/out/"], capsys)
    assert status == 0, err
    found = keys(client, name)
    assert {"out/report.docx", "out/report.md"} <= set(found)
    markdown = body(client, name, "out/report.md").decode()
    assert markdown.startswith("# 星河科技")
    links = [k for k in found if k.startswith("out/report_files/")]
    assert links and all(k[len("out/"):] in markdown for k in links)
    with zipfile.ZipFile(io.BytesIO(body(client, name, "out/report.docx"))) as docx:
        assert "word/document.xml" in docx.namelist()
    assert pending_uploads(client, name) == []
    assert list(tmp_path.iterdir()) == []  # nothing written locally
    # beside the input when no -o is given; a file -o names one object; a local input
    assert cli([f"s3://{name}/in/report.json", "--to", "jsonl"], capsys)[0] == 0
    assert cli([f"s3://{name}/in/report.json", "-o", f"s3://{name}/one.md"], capsys)[0] == 0
    assert cli([str(SAMPLE), "-o", f"s3://{name}/local.html"], capsys)[0] == 0
    assert {"in/report.jsonl", "one.md", "local.html"} <= set(keys(client, name))
    status, out, _ = cli(["info", f"s3://{name}/in/report.json", "--json"], capsys)
    assert status == 0 and json.loads(out)["pages"] == 4


def test_prefix_batch_mirrors_subfolders_reports_to_the_bucket_and_resumes(bucket, capsys,
                                                                         notes):
    name, client = bucket
    data = SAMPLE.read_bytes()
    client.put_object(Bucket=name, Key="in/a.json", Body=data)
    client.put_object(Bucket=name, Key="in/sub/b.json.gz", Body=gzip.compress(data))
    client.put_object(Bucket=name, Key="in/notes.txt", Body=b"not a result")
    client.put_object(Bucket=name, Key="in/last-run.json",
                      Body=b'{"_schema": "xparse-convert.run-report/1", "inputs": []}')
    args = [f"s3://{name}/in/", "--to", "md", "-o", f"s3://{name}/out/", "--skip-existing",
            "--report", f"s3://{name}/run.json"]
    status, _, err = cli(args, capsys)
    assert status == 0, err
    assert "last-run.json: a run report" in notes.text
    assert {"out/a.md", "out/sub/b.md"} <= set(keys(client, name))
    assert not any(k.startswith(("out/last-run", "out/notes")) for k in keys(client, name))
    report = json.loads(body(client, name, "run.json"))
    assert report["summary"]["converted"] == 2
    assert sorted(r["source"] for r in report["inputs"]) == [
        f"s3://{name}/in/a.json", f"s3://{name}/in/sub/b.json.gz"]
    # --skip-existing by the objects' times: only the input written since is converted
    stamp = {k: client.head_object(Bucket=name, Key=k)["LastModified"]
             for k in ("out/a.md", "out/sub/b.md")}
    time.sleep(1.1)  # S3 times have whole seconds
    client.put_object(Bucket=name, Key="in/sub/b.json.gz", Body=gzip.compress(data))
    assert cli(args, capsys)[0] == 0
    again = json.loads(body(client, name, "run.json"))
    assert {r["source"].rsplit("/", 1)[1]: r["skipped"] for r in again["inputs"]} == {
        "a.json": True, "b.json.gz": False}
    assert client.head_object(Bucket=name, Key="out/a.md")["LastModified"] == stamp["out/a.md"]
    assert client.head_object(Bucket=name,
                              Key="out/sub/b.md")["LastModified"] > stamp["out/sub/b.md"]


def test_a_local_folder_is_mirrored_into_a_prefix(tmp_path):
    from xparse_convert.batch import plan_jobs
    from xparse_convert.targets import formats

    (tmp_path / "in" / "sub").mkdir(parents=True)
    shutil.copy(SAMPLE, tmp_path / "in" / "a.json")
    shutil.copy(SAMPLE, tmp_path / "in" / "sub" / "b.json")
    jobs = plan_jobs([tmp_path / "in"], formats("md"), "s3://bkt/out")
    assert [(Path(j.source).name, j.out_dir) for j in jobs] == [
        ("a.json", "s3://bkt/out"), ("b.json", "s3://bkt/out/sub")]


# -- whole or nothing -------------------------------------------------------------------------

def test_failed_conversion_leaves_no_object_and_keeps_the_good_one(bucket, capsys):
    name, client = bucket
    good = SAMPLE.read_bytes()
    client.put_object(Bucket=name, Key="in/r.json", Body=good)
    assert cli([f"s3://{name}/in/r.json", "--to", "md,docx", "-o", f"s3://{name}/out/"],
               capsys)[0] == 0
    before = {k: body(client, name, k) for k in ("out/r.md", "out/r.docx")}
    client.put_object(Bucket=name, Key="in/r.json", Body=good[: len(good) // 2])
    status, _, err = cli([f"s3://{name}/in/r.json", "--to", "md,docx,html", "-o",
                          f"s3://{name}/out/"], capsys)
    assert status == 1
    assert "ends too early" in err and len(err.splitlines()) == 1
    assert {k: body(client, name, k) for k in before} == before
    assert "out/r.html" not in keys(client, name)
    assert pending_uploads(client, name) == []


def test_a_failing_upload_is_aborted_and_no_object_appears(bucket, monkeypatch):
    """The Markdown's upload fails after the DOCX's was sent: neither object appears and
    neither multipart upload is left open."""
    import s3fs

    from xparse_convert import convert
    from xparse_convert.errors import OutputError

    name, client = bucket
    client.put_object(Bucket=name, Key="in/r.json", Body=SAMPLE.read_bytes())
    sent = s3fs.core.S3File._upload_chunk

    def flaky(self, final=False):
        if self.key.endswith(".md"):
            raise ConnectionResetError("connection reset by peer")
        return sent(self, final)

    monkeypatch.setattr(s3fs.core.S3File, "_upload_chunk", flaky)
    with pytest.raises(OutputError, match="cannot upload .*r.md"):
        convert(f"s3://{name}/in/r.json", ["docx", "md"], f"s3://{name}/out/")
    assert keys(client, name) == ["in/r.json"]
    assert pending_uploads(client, name) == []


def test_killed_run_leaves_no_object_and_its_staging_is_cleaned(bucket, web, capsys, notes):
    """kill -9 while the input is still arriving: nothing appears in the bucket, and the next
    run removes what the dead run staged locally."""
    from xparse_convert.output import staging_folder

    name, client = bucket
    base, _ = web
    proc = subprocess.Popen([*CLI, f"{base}/stall.json", "--to", "md,docx", "-o",
                             f"s3://{name}/out/"], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 20
    staged: list[Path] = []
    while not staged and time.monotonic() < deadline:  # until its outputs are open
        time.sleep(0.2)
        staged = [p for p in staging_folder().iterdir() if f".{proc.pid}." in p.name]
    proc.kill()
    proc.wait()
    assert staged, "the conversion had not started writing"
    assert keys(client, name) == []
    status, _, err = cli([str(SAMPLE), "--to", "md", "-o", f"s3://{name}/out/"], capsys)
    assert status == 0, err
    assert "removed" in notes.text and "interrupted run" in notes.text
    assert not any(p.exists() for p in staged)
    assert "out/report.md" in keys(client, name)
    assert not any("stall" in k for k in keys(client, name))


# -- clusters ----------------------------------------------------------------------------------

def test_dask_cluster_reads_and_writes_the_bucket(bucket, tmp_path, capsys, monkeypatch):
    distributed = pytest.importorskip("distributed")
    name, client = bucket
    monkeypatch.chdir(tmp_path)
    for i in range(2):
        client.put_object(Bucket=name, Key=f"in/r{i}.json", Body=SAMPLE.read_bytes())
    client.put_object(Bucket=name, Key="in/bad.json", Body=b"{")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=3, processes=False,
                                  dashboard_address=":0") as cluster:
        status, _, err = cli([f"s3://{name}/in/", "--to", "docx,md", "-o",
                              f"s3://{name}/out/", "--dask-scheduler",
                              cluster.scheduler_address, "--report",
                              f"s3://{name}/run.json"], capsys)
        secret = cli([f"s3://{name}/in/", "--to", "md", "-o", f"s3://{name}/out2/",
                      "--storage-option", f"secret={SECRET}",
                      "--dask-scheduler", cluster.scheduler_address], capsys)
    assert status == 1
    assert "bad.json" in err and "ends too early" in err
    assert {f"out/r{i}.{e}" for i in range(2) for e in ("docx", "md")} <= set(keys(client, name))
    assert json.loads(body(client, name, "run.json"))["summary"]["converted"] == 2
    assert list(tmp_path.iterdir()) == []
    assert secret[0] == 2 and "secret is a credential" in secret[2]
    assert SECRET not in secret[2]
    assert not any(k.startswith("out2/") for k in keys(client, name))


# -- what goes wrong says so in one line ------------------------------------------------------

def test_missing_bucket_missing_object_and_missing_extra(bucket, capsys):
    name, _ = bucket
    missing = cli([f"s3://no-such-{name}/r.json", "--to", "md", "-o", "/nonexistent/x/"],
                  capsys)
    assert missing[0] == 1 and "no such bucket" in missing[2]
    absent = cli([f"s3://{name}/nothing.json", "--to", "md"], capsys)
    assert absent[0] == 1 and "no such object" in absent[2]
    out = cli([str(SAMPLE), "--to", "md", "-o", f"s3://no-such-{name}/out/"], capsys)
    assert out[0] == 2 and "no such bucket" in out[2]
    for scheme, extra, package in (("gs", "gcs", "gcsfs"), ("az", "azure", "adlfs")):
        if importlib.util.find_spec(package) is not None:
            continue
        lacking = cli([f"{scheme}://b/r.json", "--to", "md"], capsys)
        assert lacking[0] == 2
        assert lacking[2].strip().endswith(f"pip install 'xparse-convert[{extra}]'")
    assert all(len(p[2].strip().splitlines()) == 1 for p in (missing, absent, out))


def test_wrong_credentials_are_refused_without_showing_them(bucket, s3_endpoint, capsys):
    name, client = bucket
    client.put_object(Bucket=name, Key="r.json", Body=SAMPLE.read_bytes())

    def auth(count: str) -> None:  # moto checks signatures once this many requests passed
        urllib.request.urlopen(urllib.request.Request(
            f"{s3_endpoint}/moto-api/reset-auth", data=count.encode(), method="POST",
            headers={"Content-Type": "text/plain"}))

    auth("0")
    try:
        status, out, err = cli([f"s3://{name}/r.json", "--to", "md", "-o", f"s3://{name}/out/",
                                "--storage-option", "key=AKIAWRONGWRONGWRONG",
                                "--storage-option", f"secret={SECRET}"], capsys)
    finally:
        auth("inf")
    assert status == 2 and "access denied" in err and SECRET not in err + out
    assert len(err.strip().splitlines()) == 1


# -- the web ----------------------------------------------------------------------------------

def test_http_input_streams_and_keeps_the_signature_private(web, tmp_path, capsys):
    base, _ = web
    status, out, err = cli([f"{base}/report.json?X-Amz-Signature={SECRET}", "--to", "md",
                            "-o", str(tmp_path), "--report", "-"], capsys)
    assert status == 0, err
    assert (tmp_path / "report.md").read_text(encoding="utf-8").startswith("# 星河科技")
    assert SECRET not in out and SECRET not in err
    missing = cli([f"{base}/gone.json?sig={SECRET}", "--to", "md", "-o", str(tmp_path)],
                  capsys)
    assert missing[0] == 1 and "no such object" in missing[2]
    assert SECRET not in missing[2]
    capped = cli([f"{base}/report.json", "--to", "md", "-o", str(tmp_path / "c"),
                  "--storage-option", "max_download_mb=0.01"], capsys)
    assert capped[0] == 1 and "larger than 0.01 MB (max_download_mb)" in capped[2]
    assert not (tmp_path / "c").exists()


def test_http_server_that_stops_sending_is_given_up(web, tmp_path, capsys):
    base, _ = web
    started = time.monotonic()
    status, _, err = cli([f"{base}/stall.json?sig={SECRET}", "--to", "md", "-o",
                          str(tmp_path), "--storage-option", "stall_timeout=1"], capsys)
    assert time.monotonic() - started < 15
    assert status == 1 and "stopped sending" in err
    assert SECRET not in err
    assert list(tmp_path.iterdir()) == []


# -- streaming ---------------------------------------------------------------------------------

_READ_THROUGH = """
import resource, sys
from xparse_convert.source import open_source
source = open_source(sys.argv[1])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
total = 0
while True:
    chunk = source.stream.read(1 << 20)
    if not chunk:
        break
    total += len(chunk)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(total, (after - before) // 1024)
"""


def test_an_object_is_read_as_a_stream_with_bounded_read_ahead(bucket):
    name, client = bucket
    size = 48 << 20
    client.put_object(Bucket=name, Key="big.json",
                      Body=b'{"a": "' + b"x" * (size - 9) + b'"}')
    done = subprocess.run([sys.executable, "-c", _READ_THROUGH, f"s3://{name}/big.json"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    total, grown_mb = map(int, done.stdout.split())
    assert total == size
    assert grown_mb < 24  # a download of the whole object would take 48 MB


def test_storage_option_values_are_json_or_strings():
    from xparse_convert.errors import UsageError
    from xparse_convert.storage import display, parse_option, secret_keys

    assert parse_option("anon=true") == ("anon", True)
    assert parse_option("endpoint_url=http://minio:9000") == ("endpoint_url",
                                                              "http://minio:9000")
    assert parse_option('client_kwargs={"region_name": "cn-north-1"}') == (
        "client_kwargs", {"region_name": "cn-north-1"})
    with pytest.raises(UsageError):
        parse_option("anon")
    assert secret_keys({"key": "a", "anon": False, "client_kwargs": {
        "aws_secret_access_key": "b"}}) == ["key", "client_kwargs.aws_secret_access_key"]
    assert display("https://u:p@host/r.json?Signature=x") == "https://host/r.json?..."


def test_library_takes_storage_options(bucket, s3_endpoint):
    from xparse_convert import convert

    name, client = bucket
    data = json.dumps(envelope([element("e1", text="hello")])).encode()
    client.put_object(Bucket=name, Key="in/x.json", Body=data)
    options = {"endpoint_url": s3_endpoint, "key": "testing", "secret": "testing"}
    report = convert(f"s3://{name}/in/x.json", "md", f"s3://{name}/lib/",
                     storage_options=options)
    assert report.outputs == {"md": f"s3://{name}/lib/x.md"}
    assert body(client, name, "lib/x.md").decode().strip() == "hello"
