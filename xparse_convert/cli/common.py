"""What every subcommand of the command line shares: the program name, exit codes, signal
handling, messages (shown, never obeyed; above the progress bar), the progress bar, and the
conversion options every converting subcommand takes."""

from __future__ import annotations

import argparse
import signal
import sys
from typing import Any, NoReturn

from ..options import COMMON, writer_option_key
from ..terminal import printable
from ..writers import available

PROG = "xparse-convert"
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


def catch_signals() -> dict[int, Any] | None:
    """Route SIGINT and SIGTERM to the stopping handler; the handlers they had, to put back
    (None when this is not the main thread, whose handlers stay as they are)."""
    global _stopped_by
    _stopped_by = None
    try:
        return {s: signal.signal(s, _on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread (main() called from a thread): leave them
        return None

_live_bar: Any = None  # the progress bar on screen, if any: messages go above it


def emit(line: str) -> None:
    """Print one message line to stderr: values in it shown, never obeyed (``printable``),
    and above the progress bar rather than on its line."""
    line = printable(line)
    if _live_bar is not None:
        _live_bar.write(line, file=sys.stderr)
    else:
        print(line, file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse with our usage errors: one line, values shown, exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, printable(f"{PROG}: error: {message}") + "\n")


def _add_option(parser: argparse.ArgumentParser, flag: str, dest: str, option: Any) -> None:
    if option.kind is bool:
        parser.add_argument(flag, dest=dest, action="store_true", default=None, help=option.help)
    else:
        parser.add_argument(flag, dest=dest, metavar=option.name.upper().replace("_", "-")
                            if not option.choices else None,
                            choices=option.choices if option.kind is str else None,
                            help=option.help)


def add_conversion_options(parser: argparse.ArgumentParser, skip: tuple[str, ...] = ()
                           ) -> None:
    """The shared conversion options and every writer's own, less ``skip``."""
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


def collect_options(args: argparse.Namespace) -> dict[str, Any]:
    """The conversion options given on the command line, as the library takes them."""
    keys = [o.name for o in COMMON]
    for writer in available().values():
        keys.extend(writer_option_key(writer, o) for o in writer.options)
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def say(kind: str, source: str, text: str) -> None:
    """One message about one input: ``xparse-convert: KIND: SOURCE: TEXT``."""
    emit(f"{PROG}: {kind}: {source}: {text}")


def progress_bar(total: int | None, unit: str, enabled: bool) -> Any:
    """A progress bar on stderr (None when not ``enabled``); messages go above it."""
    global _live_bar
    if not enabled:
        return None
    from tqdm import tqdm

    _live_bar = tqdm(total=total, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                     file=sys.stderr, leave=False, dynamic_ncols=True)
    return _live_bar


def close_bar(bar: Any) -> None:
    global _live_bar
    if bar is not None:
        bar.close()
        if _live_bar is bar:
            _live_bar = None




def stopped_by() -> int | None:
    """The signal that is stopping this run, if any."""
    return _stopped_by


def stop_signal_name() -> str:
    """The name of the signal that stopped the run (``SIGINT`` when none did)."""
    return signal.Signals(interrupted_status() - 128).name
