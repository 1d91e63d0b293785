#!/usr/bin/env python3
"""Object storage against local files: the same conversion (default: the plain 1000-page result
to DOCX and Markdown) from a local file to a local folder, and from a local S3 server (moto in
server mode on loopback) to it, alternating, through the command line.  Prints each mode's
median wall time and peak RSS (of the conversion process: its own VmHWM) and the ratios
(target: S3 within 1.3x of local time, peak RSS unchanged).

    python benchmarks/storage.py [--pages 1000] [--formats docx,md] [--runs 3]

Needs ``pip install '.[s3]' 'moto[server]'``.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generate import generate  # noqa: E402

# The conversion runs the command line in a child that writes its own peak RSS (VmHWM) at
# exit: ``wait4``'s ru_maxrss would be the parent's high-water mark (a child inherits it across
# fork and exec), which here holds boto3, the S3 server and the generated input.
_CHILD = """import atexit, os, runpy, sys
def _peak():
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                with open(os.environ["XC_BENCH_PEAK"], "w") as out:
                    out.write(line.split()[1])
atexit.register(_peak)
sys.argv = ["xparse-convert", *sys.argv[1:]]
runpy.run_module("xparse_convert.cli", run_name="__main__", alter_sys=True)
"""


def _run(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one conversion."""
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as peak:
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", _CHILD, *args, "--quiet"],
                              env=dict(env, XC_BENCH_PEAK=peak.name), stderr=subprocess.PIPE)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise SystemExit(f"conversion failed: {proc.stderr.decode()}")
        return seconds, int(peak.read() or 0) / 1024

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--formats", default="docx,md")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import boto3
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = dict(os.environ, AWS_ENDPOINT_URL=f"http://{host}:{port}",
               AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench",
               AWS_DEFAULT_REGION="us-east-1")
    with tempfile.TemporaryDirectory() as work:
        source = Path(work) / f"bench_{args.pages}p_plain.json"
        generate(source, args.pages)
        megabytes = source.stat().st_size >> 20
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"],
                              aws_access_key_id="bench", aws_secret_access_key="bench",
                              region_name="us-east-1")
        client.create_bucket(Bucket="bench")
        client.upload_file(str(source), "bench", f"in/{source.name}")
        modes = {
            "local": [str(source), "--to", args.formats, "-o", str(Path(work) / "out")],
            "s3": [f"s3://bench/in/{source.name}", "--to", args.formats, "-o", "s3://bench/out/"],
        }
        found: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
        for run in range(args.runs):
            order = list(modes) if run % 2 == 0 else list(reversed(modes))
            for mode in order:
                found[mode].append(_run(modes[mode], env))
    server.stop()
    print(f"{args.pages} pages, plain, --to {args.formats}, {megabytes} MB; "
          f"median of {args.runs}")
    medians = {m: (statistics.median(t for t, _ in v), statistics.median(r for _, r in v))
               for m, v in found.items()}
    for mode, (seconds, rss) in medians.items():
        print(f"  {mode:<6} {seconds:6.2f} s  {rss:6.0f} MB peak RSS")
    time_ratio = medians["s3"][0] / medians["local"][0]
    rss_ratio = medians["s3"][1] / medians["local"][1]
    print(f"  s3/local: time {time_ratio:.2f}x (target <= 1.3x), peak RSS {rss_ratio:.2f}x")
    return 0 if time_ratio <= 1.3 else 1


if __name__ == "__main__":
    sys.exit(main())
