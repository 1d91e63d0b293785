"""Conversion options: the shared ones and each writer's own, checked in one place so the
command line and the library accept exactly the same things."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .chunking import DEFAULT_SIZE, STRATEGIES, TABLE_FORMATS
from .errors import UsageError
from .images import DEFAULT_MAX_PIXELS
from .model import GUI_TYPES, KNOWN_TYPES
from .stages import PageSet
from .storage import check_options
from .structure import DEFAULT_MAX_DEPTH, DEFAULT_MAX_STRING_MB
from .writers import Option, Writer

IMAGE_MODES = ("embed", "files", "url", "none")
# the fsspec options of URL inputs and outputs (``--storage-option KEY=VALUE``): a dict, so
# not one of the flag-shaped options below; ``convert(storage_options=...)`` sets it too
STORAGE_OPTIONS = "storage_options"

COMMON: tuple[Option, ...] = (
    Option("pages", "only these pages, e.g. 1-5,9,12-"),
    Option("types", "only these element types (comma-separated)", kind=list),
    Option("exclude_types", "leave out these element types (comma-separated)", kind=list),
    Option("furniture", "keep page furniture (Header, Footer, PageNumber)", False, kind=bool),
    Option("page_breaks", "page breaks from PageBreak elements and source page boundaries",
           False, kind=bool),
    Option("images", "how pictures are written: embed (in the file), files (in <stem>_files/), "
           "url (loaded from the source URL) or none; default: embed for docx and html, files "
           "for md (xlsx and jsonl hold no pictures)",
           choices=IMAGE_MODES),
)

# Chunking (``--to chunks``, ``--parquet-chunks``, ``iter_chunks``): the rules are in
# ``chunking``; declared here because two writers and the library share them.
CHUNK_OPTIONS: tuple[Option, ...] = (
    Option("chunk_by", "chunk boundaries: title (never across a heading of level <= "
           "--chunk-max-level), page, size, or element (one element a chunk)", "title",
           choices=STRATEGIES),
    Option("chunk_size", f"most characters (or tokens) in a chunk (default {DEFAULT_SIZE})",
           DEFAULT_SIZE, kind=int),
    Option("chunk_overlap", "characters (or tokens) a chunk repeats from the one before when "
           "the size closed it (default 0)", 0, kind=int),
    Option("chunk_max_level", "with --chunk-by title: heading levels that close a chunk "
           "(default 2)", 2, kind=int),
    Option("chunk_tokenizer", "count tokens instead of characters: a tiktoken encoding "
           "(xparse-convert[tiktoken]), a tokenizer.json file or a Hugging Face tokenizer name "
           "(xparse-convert[tokenizers])"),
    Option("chunk_table_format", "tables in chunks as markdown or html (default: markdown, "
           "html where cells span)", choices=TABLE_FORMATS),
)

# Limits: what a hostile or broken input (or server) may cost, each with a generous default.
# Declared here once; the command lines and the library read their names and defaults from
# these tuples.  The conversion limits are conversion options (``options={"max_depth": ...}``);
# ``max_download_mb`` bounds what ``parse``/``fetch`` download, before any conversion starts.
CONVERSION_LIMITS: tuple[Option, ...] = (
    Option("max_depth", "refuse input nested deeper than this (real results nest under 20)",
           DEFAULT_MAX_DEPTH, kind=int),
    Option("max_string_mb", "refuse a string value longer than this many megabytes",
           DEFAULT_MAX_STRING_MB, kind=int),
    Option("max_image_pixels", "pictures above this many pixels are left out (a JPEG is "
           "decoded at reduced size instead)", DEFAULT_MAX_PIXELS, kind=int),
)
DOWNLOAD_LIMITS: tuple[Option, ...] = (
    Option("max_download_mb", "refuse a result download larger than this many megabytes",
           2048, kind=int),
)
LIMITS = CONVERSION_LIMITS + DOWNLOAD_LIMITS
# the parser reaches MAX_DEPTH_CAP frames of Python recursion in a few walks (JSON encoders)
MAX_DEPTH_CAP = 800
COMMON = COMMON + CHUNK_OPTIONS + CONVERSION_LIMITS


def declared_types() -> frozenset[str]:
    """Element types that installed writers declare (their ``types``), beyond the
    documented ones."""
    from .writers import available

    found: set[str] = set()
    for writer in available().values():
        declared = writer.types
        found.update(t for t in declared if isinstance(t, str))
    return frozenset(found)


def match_types(names: Iterable[str], label: str = "types") -> tuple[frozenset[str], list[str]]:
    """The element types ``names`` mean, and notes on names read case-insensitively.

    A name is taken as it is when it is a documented type (document engine or GUI engine) or
    one an installed writer declares; else a case-insensitive match against the document
    engine's types (``table`` is ``Table``), with a note; else ``UsageError`` listing them.
    """
    exact = KNOWN_TYPES | GUI_TYPES
    by_lower = {t.lower(): t for t in KNOWN_TYPES}
    chosen: set[str] = set()
    notes: list[str] = []
    declared: frozenset[str] | None = None
    for name in names:
        if name in exact:
            chosen.add(name)
            continue
        if declared is None:
            declared = declared_types()  # imports every writer: only for an unusual name
        if name in declared:
            chosen.add(name)
        elif name.lower() in by_lower:
            chosen.add(by_lower[name.lower()])
            notes.append(f"{label} {name}: read as {by_lower[name.lower()]} "
                         "(type names are case-sensitive)")
        else:
            extra = sorted(declared - exact)
            raise UsageError(
                f"{label}: no element type {name!r}; document types: "
                f"{', '.join(sorted(KNOWN_TYPES))}; GUI types: {', '.join(sorted(GUI_TYPES))}"
                + (f"; writer types: {', '.join(extra)}" if extra else ""))
    return frozenset(chosen), notes


def writer_option_key(writer: type[Writer], option: Option) -> str:
    return f"{writer.name}_{option.name}".replace("-", "_")


def split_list(value: str | Iterable[Any]) -> list[str]:
    """A list option's items: ``"a, b"`` or ``["a", "b"]`` give ``["a", "b"]``."""
    items = value.split(",") if isinstance(value, str) else list(value)
    return [str(i).strip() for i in items if str(i).strip()]


def _coerce(key: str, option: Option, value: Any) -> Any:
    if value is None:
        return option.default
    if option.kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on", "0", "false",
                                                        "no", "off"):
            return value.lower() in ("1", "true", "yes", "on")
        raise UsageError(f"option {key} takes true or false, not {value!r}")
    if option.kind is list:
        items = split_list(value)
        if option.choices:
            bad = [i for i in items if i not in option.choices]
            if bad:
                raise UsageError(f"option {key}: {', '.join(bad)} not among "
                                 f"{', '.join(option.choices)}")
        return items
    if option.kind is int:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise UsageError(f"option {key} takes a number, not {value!r}") from None
    if option.kind is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise UsageError(f"option {key} takes a number, not {value!r}") from None
    if option.choices and value not in option.choices:
        raise UsageError(f"option {key} must be one of {', '.join(option.choices)}, "
                         f"not {value!r}")
    return value


def normalise(options: dict[str, Any] | None, writers: Iterable[type[Writer]]) -> dict[str, Any]:
    """Defaults filled in, values checked and coerced, unknown keys refused."""
    options = dict(options or {})
    storage_options = check_options(options.pop(STORAGE_OPTIONS, None))
    known: dict[str, Option] = {o.name: o for o in COMMON}
    for writer in writers:
        for option in writer.options:
            known[writer_option_key(writer, option)] = option
    out: dict[str, Any] = {}
    for key, value in options.items():
        norm = key.replace("-", "_")
        if norm not in known:
            # options of formats not requested this time are accepted and ignored
            if any(norm.startswith(f"{w}_") for w in _all_writer_names()):
                continue
            raise UsageError(f"unknown option {key!r}")
        out[norm] = _coerce(norm, known[norm], value)
    for key, option in known.items():
        out.setdefault(key, option.default)
    if out.get("md_source") == "engine" and any(
            out.get(k) for k in ("pages", "types", "exclude_types")):
        raise UsageError("--md-source engine copies the engine's markdown as it is and cannot "
                         "apply --pages, --types or --exclude-types; leave them out or use "
                         "--md-source model")
    pages = out.get("pages")
    if isinstance(pages, str):
        try:
            out["pages"] = PageSet.parse(pages)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    for option in CONVERSION_LIMITS:
        if out.get(option.name) is not None and out[option.name] < 1:
            raise UsageError(f"option {option.name} takes a positive number")
    if out.get("max_depth") is not None and out["max_depth"] > MAX_DEPTH_CAP:
        raise UsageError(f"option max_depth takes at most {MAX_DEPTH_CAP}")
    for key in ("types", "exclude_types"):
        if out.get(key) is not None:
            out[key] = match_types(out[key], f"option {key}")[0]
    out[STORAGE_OPTIONS] = storage_options
    return out


def _all_writer_names() -> list[str]:
    from .writers import names

    return names()
