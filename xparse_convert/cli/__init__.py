"""The command line: ``xparse-convert`` (the console script calls ``main``) and
``python -m xparse_convert.cli``.  Arguments, messages, progress and exit codes only; the
work goes through the library's public API.

``commands``: converting, ``info``, and the dispatch to subcommands; ``remote``: ``parse``
and ``fetch`` through the API; ``common``: what they share (exit codes, messages, progress,
signals, the conversion options).
"""

from __future__ import annotations

from .commands import build_parser, main
from .common import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, PROG

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "PROG", "build_parser",
           "main"]
