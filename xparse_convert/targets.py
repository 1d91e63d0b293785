"""Where an input's outputs go, one home for every rule of it: the ``-o`` rule (pandoc's),
output names (``check_stem``), the formats asked for as writer classes (resolved once, by
``formats``), each input's output folder and files and its ``<stem>_files``, and how a folder
of inputs maps onto a folder of outputs (subfolders mirrored)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from . import storage
from .errors import UsageError
from .storage import Location, ObjectPath
from .writers import Writer, available, get

ASSETS_SUFFIX = "_files"  # <stem>_files: the pictures of an input's outputs


def formats(to: str | Sequence[str]) -> list[type[Writer]]:
    """The writer classes for ``"docx,md"`` or a list of names, each once, in order."""
    names = [n.strip() for n in (to.split(",") if isinstance(to, str) else to) if n.strip()]
    if not names:
        raise UsageError("no output format given")
    writers: list[type[Writer]] = []
    for name in names:
        cls = get(name)
        if cls not in writers:
            writers.append(cls)
    return writers


def output_folder(source: Location | str | None,
                  out_dir: str | os.PathLike | ObjectPath | None) -> Location:
    """The folder an input's outputs go to: ``out_dir`` (a folder, or a prefix in an object
    store), else beside the input (``source``, its path or URL), else (a stream, a web URL, a
    job id) the current folder."""
    if out_dir is not None and str(out_dir) != "":
        return storage.location(out_dir if isinstance(out_dir, (str, ObjectPath))
                                else os.fspath(out_dir))
    if isinstance(source, str):
        source = None if storage.scheme(source) in storage.WEB else storage.location(source)
    return source.parent if source is not None else Path.cwd()


def output_paths(stem: str, out_dir: Location, writers: Sequence[type[Writer]]
                 ) -> dict[str, Location]:
    """Each format's output: ``out_dir/<stem>.<extension>``."""
    return {w.name: out_dir / f"{stem}.{w.extension}" for w in writers}


def assets_folder(stem: str, out_dir: Location) -> Location:
    """Where the pictures of ``stem``'s outputs go: ``out_dir/<stem>_files``."""
    return out_dir / f"{stem}{ASSETS_SUFFIX}"


def output_suffixes(writers: Sequence[type[Writer]]) -> list[str]:
    """What follows a stem in the names of its outputs (each format's extension, then the
    pictures folder), for names that must not meet an existing file."""
    return [*(f".{w.extension}" for w in writers), ASSETS_SUFFIX]


def mirrored(found: Location, root: Location, out_dir: str | os.PathLike | ObjectPath | None
             ) -> Location | None:
    """The output folder of ``found``, an input below the folder (or prefix) ``root`` given
    as an input: its subfolder mirrored under ``out_dir`` (None without one: beside it)."""
    if not out_dir:
        return None
    base = output_folder(None, out_dir)
    return base / found.parent.relative_to(root)  # type: ignore[arg-type]


def streamable(writer: type[Writer]) -> bool:
    """True when the format is text that a pipe or terminal can take (JSONL is, though it is
    written as bytes; DOCX and XLSX are not)."""
    return writer.text if writer.text is not None else not writer.binary


def check_stem(stem: str, label: str = "output name") -> str:
    """``stem`` when it names a file and nothing else: no folder part, absolute or relative,
    so outputs named by it stay in their folder; else ``UsageError``."""
    if (not stem or stem in (".", "..") or any(c in stem for c in "/\\\0")
            or os.path.isabs(stem)):
        raise UsageError(f"{label} {stem!r} must be a plain file name (no folder, no '..'), "
                         "so the outputs stay in their folder")
    return stem


@dataclass(frozen=True)
class OutputTarget:
    """Where ``-o`` sends the outputs: standard output, one file (``folder``/``stem`` +
    the format's extension), or a folder (``None``: beside each input)."""

    formats: tuple[str, ...]
    folder: Location | None = None
    stem: str | None = None  # the output name when -o names a file, or --name
    stdout: bool = False
    file: Location | None = None  # -o as given, when it names a file


def resolve_output(output: str | os.PathLike | None, to: str | Sequence[str] | None, *,
                   several_inputs: bool = False, name: str | None = None) -> OutputTarget:
    """The one rule for ``-o`` (pandoc's): ``-`` is standard output; a path ending in the
    extension of the single requested format is that file (without ``to``, a known extension
    chooses the format: ``-o out.docx`` is DOCX); anything else (an existing folder, a path
    ending in ``/``, any other name) is a folder.  A file with several inputs or formats, or
    whose extension is not the requested format's, is a ``UsageError``, as is a ``name`` that
    is not a plain file name or that competes with a file ``-o``."""
    requested = formats(to) if to else []
    if name is not None:
        check_stem(name, "--name")
        if several_inputs:
            raise UsageError("--name names the outputs of one input; there are several")
    if output is not None and os.fspath(output) == "-":
        if several_inputs:
            raise UsageError("-o - (standard output) takes exactly one input")
        if len(requested) != 1 or not streamable(requested[0]):
            pipeable = sorted(n for n, w in available().items() if streamable(w))
            raise UsageError("-o - (standard output) takes one input and one text format "
                             f"({', '.join(pipeable)})")
        return OutputTarget((requested[0].name,), stdout=True, stem=name)
    text = str(output) if isinstance(output, (str, ObjectPath)) else (
        os.fspath(output) if output is not None else "")
    path = storage.location(text) if output is not None else None
    extension = path.suffix[1:].lower() if path is not None else ""
    # a prefix in an object store has no folder to find: its name decides
    is_folder = text.endswith(("/", os.sep)) or (isinstance(path, Path) and path.is_dir())
    by_extension = [w for w in available().values() if w.extension.lower() == extension]
    if path is None or is_folder or not extension or not by_extension:
        if not requested:
            raise UsageError("--to FMT is required (see --list-formats), or -o FILE with the "
                             "format's extension")
        return OutputTarget(tuple(w.name for w in requested), folder=path, stem=name)
    if not requested:
        if len(by_extension) > 1:
            raise UsageError(f"-o {text}: .{extension} is written by "
                             f"{', '.join(w.name for w in by_extension)}; choose with --to")
        requested = by_extension
    if len(requested) > 1:
        raise UsageError(f"-o {text} names one file, but --to asks for {len(requested)} "
                         "formats; name a folder for several")
    if requested[0].extension.lower() != extension:
        raise UsageError(f"-o {text} ends in .{extension}, but --to asks for "
                         f"{requested[0].name} (.{requested[0].extension}); name a folder "
                         f"or a .{requested[0].extension} file")
    if several_inputs:
        raise UsageError(f"-o {text} names one file, but there are several inputs; name a "
                         "folder")
    if name is not None:
        raise UsageError(f"--name and -o {text} both name the output; give one of them")
    stem = path.name[: -len(path.suffix)]
    return OutputTarget((requested[0].name,), folder=path.parent, stem=check_stem(stem, "-o"),
                        file=path)
