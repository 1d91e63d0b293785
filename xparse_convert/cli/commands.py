"""The command line: arguments, progress, messages and exit codes.  No conversion logic here;
everything goes through the library's public API."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any, NamedTuple

from .. import __version__, convert, convert_many, inspect, render_info
from ..batch import BatchInterrupted, Job, is_folder, results_in, write_run_report
from ..convert import INPUT_FAILURES, Report
from ..diagnostics import WARNINGS_LOGGER
from ..errors import UsageError, XParseError
from ..options import match_types, split_list
from ..output import check_writable, remove_stale_temporaries
from ..storage import Remote, display, is_url, parse_option, refuse_secrets
from ..targets import output_folder, resolve_output
from ..terminal import printable
from ..writers import available
from .common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    SHOWN_NOT_CONVERTED,
    Parser,
    add_conversion_options,
    catch_signals,
    close_bar,
    collect_options,
    emit,
    interrupted_status,
    progress_bar,
    say,
    stop_signal_name,
    stopped_by,
)

SUBCOMMANDS = ("info", "parse", "fetch")

MIN_MEMORY_LIMIT_MB = 256  # address space, not RSS: a smaller cap fails ordinary inputs

def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Convert TextIn xParse results (JSON) to DOCX, XLSX, HTML, JSONL or "
                    "Markdown, streaming.",
        epilog=f"Subcommands (each has --help): '{PROG} info INPUT... [--json]' shows what "
               "results hold (a folder: one line per result); "
               f"'{PROG} parse DOCUMENT... --to FMT' parses PDFs and images with TextIn's "
               f"async API, then converts the results; '{PROG} fetch JOB_ID --to FMT' resumes "
               "a parse job. Inputs named info/parse/fetch: write ./info.",
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="result files (.json, .json.gz), folders, or - for stdin")
    parser.add_argument("--to", "-t", metavar="FMT[,FMT...]", action="append",
                        help="output formats (repeatable); optional when -o names a file")
    parser.add_argument("-o", "--output-dir", metavar="OUT",
                        help="a file when it ends in the format's extension (out.docx), else a "
                             "folder (default: beside each input); - for stdout")
    parser.add_argument("--name", metavar="STEM",
                        help="output name (stdin, or a single input), a plain file name")
    add_storage_option(parser)
    batch = parser.add_argument_group("batches")
    batch.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                       help="convert N files at once (default: one per core)")
    batch.add_argument("--timeout", type=float, metavar="S",
                       help="stop a file's conversion after S seconds (it fails alone)")
    batch.add_argument("--memory-limit", type=int, metavar="MB",
                       help="cap each file's conversion process at MB megabytes of address "
                            f"space (RLIMIT_AS: virtual, not resident memory; at least "
                            f"{MIN_MEMORY_LIMIT_MB})")
    batch.add_argument("--skip-existing", action="store_true",
                       help="skip inputs whose outputs are newer than the input (resume)")
    batch.add_argument("--report", metavar="FILE", help="write a JSON report of every input")
    batch.add_argument("--dask-scheduler", metavar="ADDRESS",
                       default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
                       help="run the batch on a Dask cluster (needs xparse-convert[dask]; "
                            "default: $DASK_SCHEDULER_ADDRESS)")
    parser.add_argument("--quiet", "-q", action="store_true",
                        help="no progress, no warnings (--strict still shows them)")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any warning")
    parser.add_argument("--debug", action="store_true", help="tracebacks and debug logging")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--list-formats", action="store_true", help="list output formats")
    add_conversion_options(parser)
    return parser


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--storage-option", metavar="KEY=VALUE", action="append", default=[],
                        help="an fsspec option for s3://, gs://, az://, http(s):// inputs and "
                             "outputs (repeatable; VALUE read as JSON when it parses), e.g. "
                             "endpoint_url=http://minio:9000")


def storage_options_of(args: argparse.Namespace) -> dict[str, Any]:
    """``--storage-option KEY=VALUE`` as the library's ``storage_options``."""
    return dict(parse_option(given) for given in args.storage_option)


def _list_formats() -> int:
    for name, writer in sorted(available().items()):
        print(printable(f"{name:<8} .{writer.extension:<6} {writer.description}"))
    return EXIT_OK


def _one_line(summary: dict[str, Any]) -> str:
    """An ``info`` summary in one line, for a folder of results."""
    def count(n: int, what: str) -> str:
        return f"{n} {what}{'' if n == 1 else 's'}"

    shape = summary["shape"] + (f" {summary['schema_version']}" if summary["schema_version"]
                                else "")
    parts = [shape, count(summary["pages"] or 0, "page"), count(summary["elements"], "element"),
             count(len(summary["tables"]), "table"), count(summary["images"]["count"], "image"),
             count(summary["formulas"], "formula"), count(len(summary["warnings"]), "warning")]
    if summary["partial"]:
        parts.append("partial")
    return f"{summary['source']}: {', '.join(parts)}"


def _run_info(argv: Sequence[str]) -> int:
    parser = Parser(prog=f"{PROG} info",
                    description="Show what xParse results hold: a file in full, a folder one "
                                "line per result.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--name", metavar="STEM")
    add_storage_option(parser)
    args = parser.parse_args(argv)
    storage_options = storage_options_of(args)
    status = EXIT_OK
    summaries = []
    listing = len(args.inputs) > 1
    for given in args.inputs:
        if is_folder(given, storage_options):
            listing = True
            found = sorted(results_in(given, storage_options))
            if not found:
                say("warning", given, "no result files (*.json, *.json.gz) in this folder")
            sources: list[str] = [str(p) for p in found]
            brief = True
        else:
            sources, brief = [given], False
        for src in sources:
            try:
                summary = inspect(Remote(src, storage_options) if is_url(src) else src,
                                  name=args.name)
            except XParseError as exc:
                emit(f"{PROG}: error: {exc.one_line()}")
                status = EXIT_FAILED
                continue
            summaries.append(summary)
            if not args.json:
                text = _one_line(summary) if brief else render_info(summary)
                print("\n".join(printable(line) for line in text.split("\n")))
    if args.json:
        print(json.dumps(summaries if listing else (summaries or [None])[0],
                         ensure_ascii=False, indent=2))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format=f"{PROG}: %(message)s")
    previous = catch_signals()
    # the command line prints every warning itself, once, after its input
    logging.getLogger(WARNINGS_LOGGER).propagate = False
    try:
        if argv and argv[0] in SUBCOMMANDS:
            if argv[0] == "info":
                return _run_info(argv[1:])
            from .remote import run_remote

            return run_remote(argv[0], argv[1:])
        return _convert(argv)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return interrupted_status()
    except BrokenPipeError:
        # the reader of our stdout (head, less) has had enough: stop quietly, like cat does
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except UsageError as exc:
        emit(f"{PROG}: error: {exc.one_line()}")
        return EXIT_USAGE
    except Exception:
        if debug:
            raise
        import traceback

        last = traceback.format_exc().strip().splitlines()[-1]
        emit(f"{PROG}: error: internal error ({last}); rerun with --debug and report it")
        return EXIT_FAILED
    finally:
        # once stopping, signals stay ignored until the process ends (see _on_signal)
        if previous is not None and stopped_by() is None:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _convert(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_formats:
        return _list_formats()
    plan = _plan(parser, args)
    tally = _Tally(args)
    for folder in plan.folders:
        if next(results_in(folder, plan.storage_options), None) is None:
            tally.warnings += 1
            tally.warn(folder, "no result files (*.json, *.json.gz) in this folder")
    interrupted = _run_inputs(parser, args, plan, tally)
    if interrupted is not None:
        return interrupted
    return _exit_status(args, plan, tally)


class _Plan(NamedTuple):
    """What the command line asks for, checked before any work."""

    target: Any  # ``targets.resolve_output``: formats, folder or file, standard output
    options: dict[str, Any]  # the conversion options, types matched
    folders: list[str]  # the inputs that are folders (or bucket prefixes)
    storage_options: dict[str, Any]  # ``--storage-option``, for URLs


def _plan(parser: argparse.ArgumentParser, args: argparse.Namespace) -> _Plan:
    """The run the arguments ask for; a usage error (exit 2) when they cannot work."""
    if not args.inputs:
        parser.error("no input given")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.memory_limit is not None and args.memory_limit < MIN_MEMORY_LIMIT_MB:
        parser.error(f"--memory-limit caps each conversion's address space (virtual, not "
                     f"resident memory): give at least {MIN_MEMORY_LIMIT_MB} (MB)")
    to = [f for given in args.to or () for f in split_list(given)] or None
    storage_options = storage_options_of(args)
    if args.dask_scheduler:
        refuse_secrets(storage_options)
    folders = [s for s in args.inputs if is_folder(s, storage_options)]
    target = resolve_output(args.output_dir, to, name=args.name,
                            several_inputs=len(args.inputs) > 1 or bool(folders))
    options = collect_options(args)
    if args.report == "-" and target.stdout:
        parser.error("--report - and -o - cannot both write to standard output")
    if args.report and args.report != "-":
        try:
            check_writable(args.report, storage_options)
        except XParseError as exc:
            raise UsageError(f"--report {display(args.report)}: {exc.message}") from None
    if target.folder is not None and not target.stdout and is_url(str(target.folder)):
        try:
            check_writable(target.file or target.folder / "x", storage_options)
        except XParseError as exc:
            raise UsageError(f"-o {display(args.output_dir)}: {exc.message}") from None
    for key, flag in (("types", "--types"), ("exclude_types", "--exclude-types")):
        if options.get(key) is not None:
            chosen, notes = match_types(split_list(options[key]), flag)
            options[key] = sorted(chosen)  # as matched: each batch child takes them as they are
            for note in notes:
                if not args.quiet:
                    emit(f"{PROG}: note: {note}")
    return _Plan(target, options, folders, storage_options)


class _Tally:
    """The run's outcome so far: every input's report, and the failures and warnings, each
    said as it comes."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = args.quiet
        self.strict = args.strict
        self.reports: list[Any] = []
        self.failures = 0
        self.warnings = 0
        self.started = time.perf_counter()

    def warn(self, source: str, line: str) -> None:
        # with --strict a warning fails the run, so it is shown even with --quiet
        if not self.quiet or self.strict:
            say("warning", source, line)

    def done(self, report: Any) -> None:
        report.source = display(report.source)  # a signed URL's query is a secret
        self.reports.append(report)
        if report.error:
            self.failures += 1
            where = f"{report.error_where}: " if report.error_where else ""
            say("error", report.source, f"{where}{report.error}")
        if report.warning_count:
            self.warnings += report.warning_count
            for line in report.warnings:
                self.warn(report.source, line)

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started


def _run_inputs(parser: argparse.ArgumentParser, args: argparse.Namespace, plan: _Plan,
                tally: _Tally) -> int | None:
    """Convert standard input, a single file in this process, or a batch; None when the run
    went to its end, else the exit status of its interruption (said, and reported)."""
    target = plan.target
    formats = list(target.formats)
    interactive = sys.stderr.isatty() and not args.quiet
    storage_options = plan.storage_options
    stdin_inputs = [s for s in args.inputs if s == "-"]
    file_inputs = [s for s in args.inputs if s != "-"]
    if len(stdin_inputs) > 1:
        parser.error("stdin (-) can be read only once")
    out_dir = None if target.stdout else target.folder
    batch = len(file_inputs) > 1 or bool(plan.folders) or any(
        v is not None for v in (args.jobs, args.timeout, args.memory_limit, args.dask_scheduler)
    ) or args.skip_existing
    try:
        for src in stdin_inputs:
            tally.done(_convert_one(src, formats, out_dir, plan.options, args.name,
                                    target.stem, target.stdout, interactive,
                                    storage_options))
        if file_inputs and not batch:
            tally.done(_convert_one(file_inputs[0], formats, out_dir, plan.options, None,
                                    target.stem, target.stdout, interactive,
                                    storage_options))
        elif file_inputs:
            # a single input named by --name or a file -o keeps that name in its own process
            sources: list[Any] = [Job(file_inputs[0], str(out_dir) if out_dir else None,
                                      target.stem)] if target.stem else file_inputs
            _run_batch(args, sources, formats, out_dir, plan.options, interactive, tally.done,
                       storage_options)
            if interactive:
                emit(_summary_line(tally.reports, tally.seconds))
    except KeyboardInterrupt as exc:
        reports = tally.reports
        before = len(stdin_inputs) if batch else 0
        if isinstance(exc, BatchInterrupted):
            reports[before:] = exc.reports
        else:  # the conversion in this process, or the batch before it had started
            todo = stdin_inputs + file_inputs
            reports.extend(Report(source=src, error="not converted: interrupted",
                                  interrupted=True) for src in todo[len(reports):])
        _say_interrupted(reports)
        if args.report:
            _write_report(args.report, reports, tally.seconds, storage_options)
        return interrupted_status()
    return None


def _exit_status(args: argparse.Namespace, plan: _Plan, tally: _Tally) -> int:
    """Write the run report, say a --strict failure, and give the exit status."""
    if args.report and not _write_report(args.report, tally.reports, tally.seconds,
                                         plan.storage_options):
        return EXIT_FAILED
    if tally.failures:
        return EXIT_FAILED
    if tally.warnings and args.strict:
        emit(f"{PROG}: error: failed under --strict: {tally.warnings} "
             f"warning{'s' if tally.warnings != 1 else ''}")
        return EXIT_FAILED
    return EXIT_OK


def _say_interrupted(reports: list[Any]) -> None:
    """What an interrupted run did not do: how many inputs, and the first few by name."""
    missing = [r.source for r in reports if r.interrupted]
    name = stop_signal_name()
    emit(f"{PROG}: interrupted ({name}): {len(missing)} of {len(reports)} input"
         f"{'s' if len(reports) != 1 else ''} not converted; finished outputs are kept")
    for source in missing[:SHOWN_NOT_CONVERTED]:
        emit(f"{PROG}: not converted: {source}")
    if len(missing) > SHOWN_NOT_CONVERTED:
        emit(f"{PROG}: ... and {len(missing) - SHOWN_NOT_CONVERTED} more (--report FILE "
             "lists every input)")


def _write_report(path: str, reports: list[Any], seconds: float,
                  storage_options: dict[str, Any]) -> bool:
    try:
        write_run_report(path, reports, seconds, storage_options)
    except OSError as exc:
        emit(f"{PROG}: error: --report {display(path)}: {exc.strerror or exc}")
        return False
    except XParseError as exc:
        emit(f"{PROG}: error: --report {display(path)}: {exc.message}")
        return False
    return True


def _summary_line(reports: list[Any], seconds: float) -> str:
    """The batch's outcome in one line, for a person at a terminal."""
    skipped = sum(1 for r in reports if r.skipped)
    failed = sum(1 for r in reports if not r.ok)
    converted = len(reports) - skipped - failed
    return (f"{PROG}: {converted} converted, {failed} failed, {skipped} skipped "
            f"in {seconds:.1f} s")


def _run_batch(args: argparse.Namespace, inputs: list[Any], formats: list[str],
               out_dir: Any, options: dict[str, Any], interactive: bool,
               report_done: Any, storage_options: dict[str, Any]) -> None:
    """Many files: a local pool, or a Dask cluster; a progress bar over files."""
    executor = None
    client = None
    if args.dask_scheduler:
        try:
            from distributed import Client
        except ImportError:
            raise UsageError("--dask-scheduler needs Dask: pip install "
                             "'xparse-convert[dask]'") from None
        try:
            # connect timeout: Dask's own setting (distributed.comm.timeouts.connect)
            client = Client(args.dask_scheduler)
        except OSError as exc:
            raise UsageError(f"cannot reach the Dask scheduler at {args.dask_scheduler}: "
                             f"{exc}") from None
        executor = client.get_executor()
    bar = progress_bar(None, "file", interactive)
    pages = 0
    started = time.perf_counter()

    def tick(report: Any) -> None:
        nonlocal pages
        pages += report.pages or 0
        if bar is not None:
            bar.update(1)
            bar.set_postfix_str(f"{pages / max(time.perf_counter() - started, 1e-9):.0f} pages/s")
        report_done(report)

    def planned(count: int) -> None:
        if bar is not None:
            bar.total = count
            bar.refresh()

    try:
        convert_many(inputs, formats, out_dir, options, jobs=args.jobs, executor=executor,
                     timeout=args.timeout, memory_limit_mb=args.memory_limit,
                     skip_existing=args.skip_existing, on_planned=planned, on_report=tick,
                     storage_options=storage_options)
    finally:
        close_bar(bar)
        if client is not None:
            client.close()


def _convert_one(src: str, formats: list[str], out_dir: Any, options: dict[str, Any],
                 name: str | None, stem: str | None, to_stdout: bool, interactive: bool,
                 storage_options: dict[str, Any]) -> Report:
    url = is_url(src)
    size = os.path.getsize(src) if not url and src != "-" and os.path.isfile(src) else None
    bar = progress_bar(size, "B", interactive)
    done = 0

    def progress(consumed: int) -> None:
        nonlocal done
        if bar is not None:
            bar.update(consumed - done)
            done = consumed

    try:
        if not to_stdout:
            remove_stale_temporaries([output_folder(src if src != "-" else None, out_dir)])
        return convert(src, formats, out_dir, options, name=name, stem=stem, stdout=to_stdout,
                       progress=progress if bar is not None else None,
                       storage_options=storage_options)
    except (UsageError, BrokenPipeError):
        raise  # the command line's own: a usage message, or a reader that has had enough
    except INPUT_FAILURES as exc:  # anything else is a bug: main() says so (--debug: raises)
        return Report.failed(display(src), exc)
    finally:
        close_bar(bar)
