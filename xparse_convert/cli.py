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
from typing import Any, NoReturn

from . import __version__, convert, convert_many, inspect, render_info
from .batch import BatchInterrupted, write_run_report
from .errors import UsageError, XParseError
from .options import COMMON, writer_option_key
from .output import check_writable, remove_stale_temporaries
from .writers import available

PROG = "xparse-convert"
SUBCOMMANDS = ("info", "parse", "fetch")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
SHOWN_NOT_CONVERTED = 10  # inputs an interrupted run names; the run report has them all

_stopped_by: int | None = None  # the signal that is stopping this run


def _on_signal(signum: int, frame: Any) -> None:
    """SIGINT and SIGTERM both stop the run the way Ctrl-C does: the first raises
    KeyboardInterrupt where the main thread is, so every ``finally`` and abort runs; from
    then on both are ignored, so pressing Ctrl-C again can neither break the cleanup nor,
    once Python is shutting down and its handlers are gone, kill the process."""
    global _stopped_by
    if _stopped_by is None:
        _stopped_by = signum
        for number in (signal.SIGINT, signal.SIGTERM):
            signal.signal(number, signal.SIG_IGN)
        raise KeyboardInterrupt


def interrupted_status() -> int:
    """The exit code of a run stopped by a signal: 128 + its number, as shells report it
    (130 for SIGINT / Ctrl-C, 143 for SIGTERM)."""
    return 128 + (_stopped_by or signal.SIGINT)


def _catch_signals() -> dict[int, Any] | None:
    global _stopped_by
    _stopped_by = None
    try:
        return {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (main() called from a thread): leave them
        return None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}\n")


def _add_option(parser: argparse.ArgumentParser, flag: str, dest: str, option: Any) -> None:
    if option.kind is bool:
        parser.add_argument(flag, dest=dest, action="store_true", default=None, help=option.help)
    else:
        parser.add_argument(flag, dest=dest, metavar=option.name.upper().replace("_", "-")
                            if not option.choices else None,
                            choices=option.choices if option.kind is str else None,
                            help=option.help)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Convert TextIn xParse results (JSON) to DOCX, XLSX, HTML, JSONL or "
                    "Markdown, streaming.",
        epilog=f"Subcommands: {PROG} info INPUT [--json] shows what a result holds. "
               "Inputs named info/parse/fetch: write ./info.",
    )
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="result files (.json, .json.gz), folders, or - for stdin")
    parser.add_argument("--to", "-t", metavar="FMT[,FMT...]", help="output formats")
    parser.add_argument("-o", "--output-dir", metavar="OUTDIR",
                        help="folder for the outputs (default: beside each input); - for stdout")
    parser.add_argument("--name", metavar="STEM", help="output name for stdin input")
    batch = parser.add_argument_group("batches")
    batch.add_argument("--jobs", "-j", type=int, default=None, metavar="N",
                       help="convert N files at once (default: one per core)")
    batch.add_argument("--timeout", type=float, metavar="S",
                       help="stop a file's conversion after S seconds (it fails alone)")
    batch.add_argument("--memory-limit", type=int, metavar="MB",
                       help="cap each file's conversion process at MB megabytes")
    batch.add_argument("--skip-existing", action="store_true",
                       help="skip inputs whose outputs are newer than the input (resume)")
    batch.add_argument("--report", metavar="FILE", help="write a JSON report of every input")
    batch.add_argument("--dask-scheduler", metavar="ADDRESS",
                       default=os.environ.get("DASK_SCHEDULER_ADDRESS"),
                       help="run the batch on a Dask cluster (needs xparse-convert[dask]; "
                            "default: $DASK_SCHEDULER_ADDRESS)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress, no warnings")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any warning")
    parser.add_argument("--debug", action="store_true", help="tracebacks and debug logging")
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    parser.add_argument("--list-formats", action="store_true", help="list output formats")
    _add_conversion_options(parser)
    return parser


def _add_conversion_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()
                            ) -> None:
    shared = parser.add_argument_group("conversion options")
    for option in COMMON:
        if option.name in skip:
            continue
        _add_option(shared, f"--{option.name.replace('_', '-')}", option.name, option)
    for name, writer in sorted(available().items()):
        if not writer.options:
            continue
        group = parser.add_argument_group(f"{name} options")
        for option in writer.options:
            key = writer_option_key(writer, option)
            _add_option(group, f"--{key.replace('_', '-')}", key, option)


def _collect_options(args: argparse.Namespace) -> dict[str, Any]:
    keys = [o.name for o in COMMON]
    for writer in available().values():
        keys.extend(writer_option_key(writer, o) for o in writer.options)
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _say(kind: str, source: str, text: str) -> None:
    print(f"{PROG}: {kind}: {source}: {text}".replace("\n", " "), file=sys.stderr)


def _progress_bar(total: int | None, unit: str, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                file=sys.stderr, leave=False, dynamic_ncols=True)


def _list_formats() -> int:
    for name, writer in sorted(available().items()):
        print(f"{name:<8} .{writer.extension:<6} {writer.description}")
    return EXIT_OK


def _run_info(argv: Sequence[str]) -> int:
    parser = _Parser(prog=f"{PROG} info", description="Show what an xParse result holds.")
    parser.add_argument("inputs", nargs="+", metavar="INPUT")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--name", metavar="STEM")
    args = parser.parse_args(argv)
    status = EXIT_OK
    summaries = []
    for src in args.inputs:
        try:
            summary = inspect(src, name=args.name)
        except XParseError as exc:
            print(f"{PROG}: error: {exc.one_line()}", file=sys.stderr)
            status = EXIT_FAILED
            continue
        summaries.append(summary)
        if not args.json:
            print(render_info(summary))
    if args.json:
        print(json.dumps(summaries if len(args.inputs) > 1 else (summaries or [None])[0],
                         ensure_ascii=False, indent=2))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format=f"{PROG}: %(message)s")
    previous = _catch_signals()
    try:
        if argv and argv[0] in SUBCOMMANDS:
            if argv[0] == "info":
                return _run_info(argv[1:])
            from .remote_cli import run_remote

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
        print(f"{PROG}: error: {exc.one_line()}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        if debug:
            raise
        import traceback

        last = traceback.format_exc().strip().splitlines()[-1]
        print(f"{PROG}: error: internal error ({last}); rerun with --debug and report it",
              file=sys.stderr)
        return EXIT_FAILED
    finally:
        # once stopping, signals stay ignored until the process ends (see _on_signal)
        if previous is not None and _stopped_by is None:
            for number, handler in previous.items():
                signal.signal(number, handler)


def _convert(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.list_formats:
        return _list_formats()
    if not args.inputs:
        parser.error("no input given")
    if not args.to:
        parser.error("--to FMT is required (see --list-formats)")
    if args.jobs is not None and args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    options = _collect_options(args)
    formats = [f.strip() for f in args.to.split(",") if f.strip()]
    to_stdout = args.output_dir == "-"
    if to_stdout and (len(args.inputs) != 1 or os.path.isdir(args.inputs[0])):
        parser.error("-o - (standard output) takes exactly one input")
    if args.report == "-" and to_stdout:
        parser.error("--report - and -o - cannot both write to standard output")
    if args.report and args.report != "-":
        try:
            check_writable(args.report)
        except XParseError as exc:
            raise UsageError(f"--report {args.report}: {exc.message}") from None
    interactive = sys.stderr.isatty() and not args.quiet
    failures = 0
    warnings = 0
    reports: list[Any] = []
    started = time.perf_counter()

    def report_done(report: Any) -> None:
        nonlocal failures, warnings
        reports.append(report)
        if report.error:
            failures += 1
            where = f"{report.error_where}: " if report.error_where else ""
            _say("error", report.source, f"{where}{report.error}")
        if report.warning_count:
            warnings += report.warning_count
            if not args.quiet:
                for line in report.warnings:
                    _say("warning", report.source, line)

    stdin_inputs = [s for s in args.inputs if s == "-"]
    file_inputs = [s for s in args.inputs if s != "-"]
    if len(stdin_inputs) > 1:
        parser.error("stdin (-) can be read only once")
    out_dir = None if to_stdout else args.output_dir
    batch = len(file_inputs) > 1 or any(os.path.isdir(s) for s in file_inputs) or any(
        v is not None for v in (args.jobs, args.timeout, args.memory_limit, args.dask_scheduler)
    ) or args.skip_existing
    try:
        for src in stdin_inputs:
            report_done(_convert_one(src, formats, out_dir, options, args.name, to_stdout,
                                     interactive))
        if file_inputs and not batch:
            report_done(_convert_one(file_inputs[0], formats, out_dir, options, None,
                                     to_stdout, interactive))
        elif file_inputs:
            _run_batch(args, file_inputs, formats, out_dir, options, interactive, report_done)
    except KeyboardInterrupt as exc:
        from .convert import Report

        before = len(stdin_inputs) if batch else 0
        if isinstance(exc, BatchInterrupted):
            reports[before:] = exc.reports
        else:  # the conversion in this process, or the batch before it had started
            todo = stdin_inputs + file_inputs
            reports.extend(Report(source=src, error="not converted: interrupted",
                                  interrupted=True) for src in todo[len(reports):])
        _say_interrupted(reports)
        if args.report:
            _write_report(args.report, reports, time.perf_counter() - started)
        return interrupted_status()
    if args.report and not _write_report(args.report, reports, time.perf_counter() - started):
        return EXIT_FAILED
    if failures:
        return EXIT_FAILED
    if warnings and args.strict:
        return EXIT_FAILED
    return EXIT_OK


def _say_interrupted(reports: list[Any]) -> None:
    """What an interrupted run did not do: how many inputs, and the first few by name."""
    missing = [r.source for r in reports if r.interrupted]
    name = signal.Signals(_stopped_by or signal.SIGINT).name
    print(f"{PROG}: interrupted ({name}): {len(missing)} of {len(reports)} input"
          f"{'s' if len(reports) != 1 else ''} not converted; finished outputs are kept",
          file=sys.stderr)
    for source in missing[:SHOWN_NOT_CONVERTED]:
        print(f"{PROG}: not converted: {source}", file=sys.stderr)
    if len(missing) > SHOWN_NOT_CONVERTED:
        print(f"{PROG}: ... and {len(missing) - SHOWN_NOT_CONVERTED} more (--report FILE "
              "lists every input)", file=sys.stderr)


def _write_report(path: str, reports: list[Any], seconds: float) -> bool:
    try:
        write_run_report(path, reports, seconds)
    except OSError as exc:
        print(f"{PROG}: error: --report {path}: {exc.strerror or exc}", file=sys.stderr)
        return False
    return True


def _run_batch(args: argparse.Namespace, inputs: list[str], formats: list[str],
               out_dir: str | None, options: dict[str, Any], interactive: bool,
               report_done: Any) -> None:
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
    bar = _progress_bar(None, "file", interactive)
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
                     skip_existing=args.skip_existing, on_planned=planned, on_report=tick)
    finally:
        if bar is not None:
            bar.close()
        if client is not None:
            client.close()


def _convert_one(src: str, formats: list[str], out_dir: str | None, options: dict[str, Any],
                 name: str | None, to_stdout: bool, interactive: bool) -> Any:
    from .convert import Report

    size = os.path.getsize(src) if src != "-" and os.path.isfile(src) else None
    bar = _progress_bar(size, "B", interactive)
    done = 0

    def progress(consumed: int) -> None:
        nonlocal done
        if bar is not None:
            bar.update(consumed - done)
            done = consumed

    try:
        if not to_stdout:
            remove_stale_temporaries([out_dir or (os.path.dirname(src) if src != "-" else ".")
                                      or "."])
        return convert(src, formats, out_dir, options, name=name, stdout=to_stdout,
                       progress=progress if bar is not None else None)
    except UsageError:
        raise
    except XParseError as exc:
        return Report(source=exc.source or src, error=exc.message, error_where=exc.where)
    except BrokenPipeError:
        raise
    except OSError as exc:
        return Report(source=src, error=f"{exc.strerror or exc}")
    finally:
        if bar is not None:
            bar.close()


if __name__ == "__main__":  # pragma: no cover
    # run the package's module, not a second copy named __main__: the signal state is one
    from xparse_convert.cli import main as _main

    sys.exit(_main())
