"""The ``parse`` and ``fetch`` subcommands: from a document (or a job id) to converted files
through TextIn's async API.  Arguments and messages only; the work is in ``api``."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import UsageError, XParseError
from ..options import DOWNLOAD_LIMITS, split_list
from ..output import temporary_name
from ..targets import OutputTarget, resolve_output
from ..terminal import printable
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    SHOWN_NOT_CONVERTED,
    Parser,
    add_conversion_options,
    collect_options,
    emit,
    interrupted_status,
    say,
    stop_signal_name,
)

# After Ctrl-C or SIGTERM, the seconds the workers get to stop by themselves (a poll's sleep
# ends at once, a transfer at its next chunk); a request the server holds open is not waited
# for: the run ends anyway, within the 2 s the README promises.
GRACE = 1.0


def _parser(command: str) -> argparse.ArgumentParser:
    if command == "parse":
        parser = Parser(prog=f"{PROG} parse",
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
        parser = Parser(prog=f"{PROG} fetch",
                        description="Resume a parse job: wait, download, convert.")
        parser.add_argument("job_ids", nargs="+", metavar="JOB_ID")
        parser.add_argument("--name", metavar="STEM", help="output name (default: the "
                            "result's file name, else the job id)")
    parser.add_argument("--to", "-t", metavar="FMT[,FMT...]", action="append",
                        help="output formats (repeatable); optional when -o names a file")
    parser.add_argument("-o", "--output-dir", metavar="OUT",
                        help="a file when it ends in the format's extension (out.docx; the "
                             "downloaded result goes beside it, out.json), else a folder "
                             "(default: beside each document; for fetch, here); - for stdout")
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
    add_conversion_options(parser, skip=("pages",) if command == "parse" else ())
    return parser


def run_remote(command: str, argv: list[str]) -> int:
    args = _parser(command).parse_args(argv)
    from ..api import DEFAULT_BASE_URL, Client, check_targets, find_documents

    plan = _plan(command, args)
    stop = threading.Event()  # set on Ctrl-C/SIGTERM: every worker stops where it is
    try:
        client = Client(args.app_id or "", args.secret_code or "",
                        args.api_base or DEFAULT_BASE_URL,
                        max_download_mb=args.max_download_mb, cancel=stop)
    except XParseError as exc:
        emit(f"{PROG}: error: {exc.one_line()}")
        return EXIT_USAGE
    items = find_documents(args.inputs, plan.out_dir) if command == "parse" else \
        [(job, plan.out_dir) for job in args.job_ids]
    if not items:
        emit(f"{PROG}: error: no documents found")
        return EXIT_FAILED
    taken: set[Any] = set()  # names claimed in this run: the next one made alike gets -2
    if command == "parse":
        try:
            taken = check_targets(items, plan.formats, stem=plan.target.stem)
        except XParseError as exc:
            emit(f"{PROG}: error: {exc.one_line()}")
            return EXIT_USAGE
    return _Run(command, args, plan, client, stop, items, taken).run()


class _Plan(NamedTuple):
    """What a parse or fetch command asks for, checked before any request."""

    target: OutputTarget  # the -o rule of conversions; a file -o names the result too
    formats: list[str]
    out_dir: str | None  # the folder -o names, if any
    options: dict[str, Any]  # the conversion options
    config: dict[str, Any] | None  # parse --config: the ParseConfig


def _plan(command: str, args: argparse.Namespace) -> _Plan:
    """The run the arguments ask for; a ``UsageError`` when they cannot work."""
    to = [f for given in args.to or () for f in split_list(given)] or None
    inputs = args.inputs if command == "parse" else args.job_ids
    several = len(inputs) > 1 or (command == "parse" and any(
        "://" not in i and os.path.isdir(i) for i in inputs))
    # the -o rule of conversions; a file -o names the downloaded result too (out.json)
    target = resolve_output(args.output_dir, to, several_inputs=several,
                            name=getattr(args, "name", None))
    out_dir = None if target.stdout or target.folder is None else str(target.folder)
    options = collect_options(args)
    for option in DOWNLOAD_LIMITS:
        if getattr(args, option.name) < 1:
            raise UsageError(f"--{option.name.replace('_', '-')} takes a positive number")
    if command == "fetch":
        from ..api import JOB_ID_RULE, is_job_id, shown

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
    return _Plan(target, list(target.formats), out_dir, options, config)


class _Outcome(NamedTuple):
    """How one item's work ended."""

    index: int  # the item's place in the run
    report: Any  # its conversion's Report, when the work got that far
    error: str | None  # else why not, in one line


class _Run:
    """One parse or fetch run: the items, the worker threads' shared state (under ``lock``)
    and what is said about each item as its work ends."""

    def __init__(self, command: str, args: argparse.Namespace, plan: _Plan, client: Any,
                 stop: threading.Event, items: list[tuple[str, str | None]],
                 taken: set[Any]) -> None:
        self.command = command
        self.args = args
        self.plan = plan
        self.client = client
        self.stop = stop
        self.items = items  # (document or job id, its output folder)
        self.taken = taken
        self.interactive = sys.stderr.isatty() and not args.quiet
        self.lock = threading.Lock()
        self.job_of: dict[int, str] = {}  # item index -> its job id, once known
        self.finished: set[int] = set()  # items whose work ended, converted or failed

    def run(self) -> int:
        failures = 0
        workers = max(1, self.args.concurrency) if self.command == "parse" else 1
        pool = ThreadPoolExecutor(workers)
        futures: list[Future[_Outcome]] = []
        try:
            futures.extend(pool.submit(self.one, index) for index in range(len(self.items)))
            for future in futures:
                if not self.said(future.result()):
                    failures += 1
            pool.shutdown()
            self.client.close()
        except KeyboardInterrupt:
            return self.interrupted(pool, futures)
        return EXIT_FAILED if failures else EXIT_OK

    # -- in the worker threads ---------------------------------------------------------
    def submitted(self, index: int, document: str, job_id: str) -> None:
        with self.lock:
            self.job_of[index] = job_id
        if not self.args.quiet:
            emit(f"{PROG}: {document}: job {job_id} submitted")

    def status_line(self, state: Any, elapsed: float) -> None:
        if self.interactive and not self.stop.is_set():
            # the \r is ours (redraw the line); the server's words are shown, never obeyed
            print("\r" + printable(f"{PROG}: job {state.job_id}: {state.status} "
                                   f"({elapsed:.0f} s)   "),
                  end="", file=sys.stderr, flush=True)

    def one(self, index: int) -> _Outcome:
        from ..api import fetch_and_convert, parse_and_convert

        item, folder = self.items[index]
        if self.stop.is_set():  # stopping: start nothing new
            raise _NotStarted
        args, plan = self.args, self.plan
        try:
            if self.command == "parse":
                report = parse_and_convert(
                    self.client, item, plan.formats, folder, plan.options, config=plan.config,
                    page_range=args.page_range, password=args.password, webhook=args.webhook,
                    poll_timeout=args.poll_timeout, poll_interval=args.poll_interval,
                    on_submitted=lambda document, job: self.submitted(index, document, job),
                    on_status=self.status_line, taken=self.taken, stem=plan.target.stem,
                    stdout=plan.target.stdout)
            else:
                with self.lock:
                    self.job_of[index] = item
                report = fetch_and_convert(self.client, item, plan.formats, folder,
                                           plan.options, name=plan.target.stem,
                                           poll_timeout=args.poll_timeout,
                                           poll_interval=args.poll_interval,
                                           on_status=self.status_line, taken=self.taken,
                                           stdout=plan.target.stdout)
            outcome = _Outcome(index, report, None)
        except (XParseError, TimeoutError, OSError) as exc:
            message = exc.one_line() if isinstance(exc, XParseError) else str(exc)
            outcome = _Outcome(index, None, message)
        with self.lock:
            self.finished.add(index)
        return outcome

    # -- in the main thread ------------------------------------------------------------
    def said(self, outcome: _Outcome) -> bool:
        """Say how an item ended; True when it was converted."""
        index, report, error = outcome
        item = self.items[index][0]
        if self.interactive:
            print("\r", end="", file=sys.stderr)
        if error is not None:
            say("error", item, error)
            return False
        if report.error:
            where = f"{report.error_where}: " if report.error_where else ""
            say("error", item, f"{where}{report.error} (the result is kept in "
                f"{report.outputs.get('json', '?')})")
            return False
        if not self.args.quiet:
            for line in report.warnings:
                say("warning", item, line)
            emit(f"{PROG}: {item}: wrote {', '.join(report.outputs.values())}")
        return True

    def interrupted(self, pool: ThreadPoolExecutor, futures: list[Future[_Outcome]]) -> int:
        """Stop every worker, clean up, say what is left to do and how to resume it."""
        command, items = self.command, self.items
        self.stop.set()
        pool.shutdown(wait=False, cancel_futures=True)
        # not the cancelled ones: wait() counts a future cancelled this way as never done
        wait([f for f in futures if not f.done()], timeout=GRACE)
        _remove_our_temporaries({_folder_of(command, item, folder) for item, folder in items})
        with self.lock:
            # fetch: an item is its job id, started or not
            unfinished = [(index, self.job_of.get(index) or (
                items[index][0] if command == "fetch" else None))
                for index in range(len(items)) if index not in self.finished]
        if self.interactive:
            print(file=sys.stderr)  # end the status line
        _say_interrupted(command, len(items), [
            (job, items[index][0], _resume(command, job, items[index], self.plan.target,
                                           self.plan.options))
            for index, job in unfinished if job is not None],
            not_submitted=sum(1 for _, job in unfinished if job is None))
        if any(not f.done() for f in futures):
            # a request the server holds open: its thread cannot be stopped, and Python
            # would wait for it at exit; everything is said and cleaned, so leave now
            sys.stderr.flush()
            os._exit(interrupted_status())
        self.client.close()
        return interrupted_status()


class _NotStarted(Exception):
    """An item the run stopped before starting."""


def _folder_of(command: str, item: str, out_dir: str | None) -> Path:
    """The folder an item's files are written to: a document's as ``api`` chooses it; a
    job's ``-o``, else the current folder."""
    from ..api import output_folder

    if command == "parse":
        return output_folder(item, out_dir)
    return Path(out_dir) if out_dir else Path.cwd()


def _remove_our_temporaries(folders: set[Path]) -> None:
    """Remove this process's temporary files in ``folders`` (a download or conversion cut
    short); the names carry host and pid, so nothing else matches."""
    pattern = temporary_name(Path("*"), os.getpid())
    for folder in folders:
        for leftover in folder.glob(pattern):
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)


def _resume(command: str, job: str, entry: tuple[str, str | None], target: OutputTarget,
            options: dict[str, Any]) -> str:
    """The ``fetch`` command that finishes ``job`` as this run would have: same formats,
    same place, same names, same conversion options."""
    item, out_dir = entry
    words = [PROG, "fetch", job, "--to", ",".join(target.formats)]
    if target.stdout:
        words += ["-o", "-"]
    elif target.file is not None:
        words += ["-o", str(target.file)]
    else:
        folder = str(_folder_of(command, item, out_dir))
        # a folder whose name ends like a format's extension would be read as a file
        words += ["-o", folder + "/" if Path(folder).suffix else folder]
        if target.stem is not None:
            words += ["--name", target.stem]
        elif command == "parse" and "://" not in item:
            words += ["--name", Path(item).stem]
    for key, value in options.items():
        flag = f"--{key.replace('_', '-')}"
        words += [flag] if value is True else [flag, str(value)]
    return " ".join(shlex.quote(word) for word in words)


def _say_interrupted(command: str, total: int, unfinished: list[tuple[str, str, str]],
                     not_submitted: int) -> None:
    """What a stopped run leaves to do: each unfinished job (job id, document, resume
    command; the first few) and, for ``parse``, how many documents were not submitted."""
    name = stop_signal_name()
    jobs = len(unfinished)
    if command == "parse":
        what = f"{jobs} job{'s' if jobs != 1 else ''} submitted and not finished"
        if not_submitted:
            what += (f", {not_submitted} document{'s' if not_submitted != 1 else ''} not "
                     "submitted")
    else:
        what = f"{jobs} of {total} job{'s' if total != 1 else ''} not finished"
    emit(f"{PROG}: interrupted ({name}): {what}; finished outputs are kept")
    for job, item, command_line in unfinished[:SHOWN_NOT_CONVERTED]:
        where = f" ({item})" if command == "parse" else ""
        emit(f"{PROG}: job {job}{where}: resume with: {command_line}")
    if jobs > SHOWN_NOT_CONVERTED:
        emit(f"{PROG}: ... and {jobs - SHOWN_NOT_CONVERTED} more job"
             f"{'s' if jobs - SHOWN_NOT_CONVERTED != 1 else ''}")
