"""The ``parse`` and ``fetch`` subcommands: from a document (or a job id) to converted files
through TextIn's async API.  Arguments and messages only; the work is in ``api``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .cli import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    _add_conversion_options,
    _collect_options,
    _Parser,
    _say,
)
from .errors import UsageError, XParseError
from .options import DOWNLOAD_LIMITS


def _parser(command: str) -> argparse.ArgumentParser:
    if command == "parse":
        parser = _Parser(prog=f"{PROG} parse",
                         description="Parse documents with TextIn's async API, then convert "
                                     "the results.")
        parser.add_argument("inputs", nargs="+", metavar="DOCUMENT",
                            help="files, folders (every document below) or http(s) URLs")
        parser.add_argument("--config", metavar="FILE",
                            help="a JSON ParseConfig (capabilities, scope, document, config)")
        parser.add_argument("--pages", dest="page_range", metavar="RANGE",
                            help="pages to parse, e.g. 1-20 (scope.page_range)")
        parser.add_argument("--password", help="the document's password")
        parser.add_argument("--webhook", metavar="URL", help="called when a job ends")
        parser.add_argument("--concurrency", type=int, default=2, metavar="N",
                            help="documents in flight at once (default 2)")
    else:
        parser = _Parser(prog=f"{PROG} fetch",
                         description="Resume a parse job: wait, download, convert.")
        parser.add_argument("job_ids", nargs="+", metavar="JOB_ID")
        parser.add_argument("--name", metavar="STEM", help="output name (default: the "
                            "result's file name, else the job id)")
    parser.add_argument("--to", "-t", required=True, metavar="FMT[,FMT...]")
    parser.add_argument("-o", "--output-dir", metavar="OUTDIR")
    parser.add_argument("--app-id", default=os.environ.get("XPARSE_APP_ID"),
                        help="default: $XPARSE_APP_ID")
    parser.add_argument("--secret-code", default=os.environ.get("XPARSE_SECRET_CODE"),
                        help="default: $XPARSE_SECRET_CODE (prefer the variable: "
                             "arguments are visible to other users in ps)")
    parser.add_argument("--api-base", default=os.environ.get("XPARSE_API_BASE"),
                        help="API base URL (default: the production host)")
    parser.add_argument("--poll-timeout", type=float, default=3600.0, metavar="S",
                        help="give up on a job S seconds after submitting it, or after "
                             "starting to wait for it (default 3600)")
    parser.add_argument("--poll-interval", type=float, default=1.0, metavar="S",
                        help="first wait between status checks; it grows to 15 s")
    for option in DOWNLOAD_LIMITS:
        parser.add_argument(f"--{option.name.replace('_', '-')}", dest=option.name,
                            type=option.kind, default=option.default,
                            metavar="MB" if option.name.endswith("_mb") else "N",
                            help=f"{option.help} (default {option.default})")
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument("--debug", action="store_true")
    # for parse, --pages chooses the pages the API parses (scope.page_range), not a filter
    _add_conversion_options(parser, skip=("pages",) if command == "parse" else ())
    return parser


def run_remote(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)
    from .api import (
        DEFAULT_BASE_URL,
        Client,
        check_targets,
        fetch_and_convert,
        find_documents,
        parse_and_convert,
    )

    formats = [f.strip() for f in args.to.split(",") if f.strip()]
    options = _collect_options(args)
    for option in DOWNLOAD_LIMITS:
        if getattr(args, option.name) < 1:
            raise UsageError(f"--{option.name.replace('_', '-')} takes a positive number")
    if command == "fetch":
        from .api import JOB_ID_RULE, is_job_id, shown

        for job in args.job_ids:
            if not is_job_id(job):
                raise UsageError(f"{shown(job)} is not a job id ({JOB_ID_RULE})")
    config: dict[str, Any] | None = None
    if command == "parse" and args.config:
        try:
            with open(args.config, encoding="utf-8") as handle:
                config = json.load(handle)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--config {args.config}: {exc}") from None
        if not isinstance(config, dict):
            raise UsageError(f"--config {args.config}: not a JSON object")
    interactive = sys.stderr.isatty() and not args.quiet
    lock = threading.Lock()
    pending: dict[str, str] = {}  # job id -> what it is for, until its result is downloaded

    def submitted(document: str, job_id: str) -> None:
        with lock:
            pending[job_id] = document
        if not args.quiet:
            print(f"{PROG}: {document}: job {job_id} submitted", file=sys.stderr)

    def status_line(state: Any, elapsed: float) -> None:
        if interactive:
            print(f"\r{PROG}: job {state.job_id}: {state.status} ({elapsed:.0f} s)   ",
                  end="", file=sys.stderr, flush=True)

    try:
        client = Client(args.app_id or "", args.secret_code or "",
                        args.api_base or DEFAULT_BASE_URL,
                        max_download_mb=args.max_download_mb)
    except XParseError as exc:
        print(f"{PROG}: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_USAGE

    def one(entry: tuple[str, str | None]) -> Any:
        item, folder = entry
        try:
            if command == "parse":
                report = parse_and_convert(
                    client, item, formats, folder, options, config=config,
                    page_range=args.page_range, password=args.password, webhook=args.webhook,
                    poll_timeout=args.poll_timeout, poll_interval=args.poll_interval,
                    on_submitted=submitted, on_status=status_line, taken=taken)
            else:
                with lock:
                    pending[item] = item
                report = fetch_and_convert(client, item, formats, folder, options,
                                           name=args.name, poll_timeout=args.poll_timeout,
                                           poll_interval=args.poll_interval,
                                           on_status=status_line, taken=taken)
            with lock:
                for job, what in list(pending.items()):
                    if what == item:
                        del pending[job]
            return item, report, None
        except (XParseError, TimeoutError, OSError) as exc:
            message = exc.one_line() if isinstance(exc, XParseError) else str(exc)
            return item, None, message

    items = find_documents(args.inputs, args.output_dir) if command == "parse" else \
        [(job, args.output_dir) for job in args.job_ids]
    if not items:
        print(f"{PROG}: error: no documents found", file=sys.stderr)
        return EXIT_FAILED
    taken: set[Any] = set()  # names claimed in this run: the next one made alike gets -2
    if command == "parse":
        try:
            taken = check_targets(items, formats)
        except XParseError as exc:
            print(f"{PROG}: error: {exc.one_line()}", file=sys.stderr)
            return EXIT_USAGE
    failures = 0
    workers = max(1, args.concurrency) if command == "parse" else 1
    pool = ThreadPoolExecutor(workers)
    try:
        with client:
            for item, report, error in pool.map(one, items):
                if interactive:
                    print("\r", end="", file=sys.stderr)
                if error is not None:
                    failures += 1
                    _say("error", item, error)
                    continue
                if report.error:
                    failures += 1
                    where = f"{report.error_where}: " if report.error_where else ""
                    _say("error", item, f"{where}{report.error} (the result is kept in "
                         f"{report.outputs.get('json', '?')})")
                elif not args.quiet:
                    for line in report.warnings:
                        _say("warning", item, line)
                    print(f"{PROG}: {item}: wrote {', '.join(report.outputs.values())}",
                          file=sys.stderr)
    except KeyboardInterrupt:
        with lock:
            jobs = list(pending)
        print(f"\n{PROG}: interrupted", file=sys.stderr)
        for job in jobs:
            print(f"{PROG}: job {job} is still running; resume with: {PROG} fetch {job} "
                  f"--to {args.to}" + (f" -o {args.output_dir}" if args.output_dir else ""),
                  file=sys.stderr)
        sys.stderr.flush()
        os._exit(EXIT_INTERRUPTED)  # worker threads may be mid-poll: do not wait for them
    pool.shutdown()
    return EXIT_FAILED if failures else EXIT_OK
