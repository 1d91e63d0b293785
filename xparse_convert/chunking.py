"""Chunks for retrieval: the logical document cut into pieces of bounded size, each carrying
the provenance of every element in it (ids, pages, boxes, offsets, table rows).

Rules, in the order they apply:
1. Units.  Each logical element with text is one unit: a text chain joined across pages is one
   unit (its fragments keep their own offsets); a table is one unit (its caption first, then
   the grid as Markdown, or HTML when cells span, or as ``table_format`` says); a picture is
   its caption and the text the engine recognised in it.  Page breaks and elements without
   text make no unit; furniture makes one only when the stream carries it (``--furniture``).
2. Boundaries.  ``title``: a chunk closes before a heading of level <= ``max_level``, unless
   it holds only headings that one comes under (they stay open, so a heading is never a chunk
   alone before its section; the overlap of rule 4 never crosses such a heading);
   ``page``: before a unit that starts on another page; ``element``: before every unit;
   ``size``: never.  Every strategy also closes a chunk before a unit that does not fit;
   the headings that end it then move on to the next chunk, with the section they head.
3. Size.  Small neighbouring units merge up to ``size`` (characters, or tokens of
   ``tokenizer``), joined by a blank line.  A longer text unit is split at sentence ends
   (CJK punctuation included), else at spaces, else anywhere; its last piece stays open for
   what follows.  A longer table is split on whole rows, each part a chunk of its own that
   starts with the header rows (and the first with the caption).  "Longer" counts the
   headings the unit joins (rule 2): a unit that fits alone but not beside them is split
   there too, the headings leading its first piece or part.  A caption too long to lead a
   part with the header and one row is text of its own before the parts; a table of header
   rows only is cut on those rows.  Only a table part whose header and one row exceed the
   size can be larger; it is flagged ``oversize``.
4. Overlap.  A chunk closed by the size (not by a boundary of rule 2, nor before headings
   that move on: they start a section) passes its last
   ``overlap`` characters (or tokens) of text on: the next chunk starts with them, cut at a
   space where one is near; ``overlap`` in the record says how many characters repeat, and
   their spans are flagged.
5. Identity.  ``chunk_id`` is a UUID-shaped hash of the result's ``file_id`` (else the
   input's name), the chunk's position and the chunking options: a rerun with the same
   options gives the same ids, so a vector store updates in place.

Memory: one open chunk and the table being stitched by the logical stage; a record is
handed on as soon as its chunk closes.
"""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import UsageError
from .model import DocumentInfo, Element
from .tables import Cell, Table
from .text import find_bad, replace_bad

CHUNK_SCHEMA = "xparse-convert.chunks/1"
STRATEGIES = ("title", "page", "size", "element")
TABLE_FORMATS = ("markdown", "html")
DEFAULT_SIZE = 2000
SEPARATOR = "\n\n"

Counter = Callable[[str], int]

# A cut may fall after a sentence end (closing quotes and brackets go with it) or a line end;
# CJK sentence punctuation needs no space after it.
_SENTENCE = re.compile(r"(?:[.!?;…]+[\"'”’)\]）」』]*\s+|[。！？；]+[”’）」』]*\s*|\n\s*)")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class ChunkOptions:
    """How to chunk (see the module's rules); ``tokenizer`` None counts characters."""

    by: str = "title"
    size: int = DEFAULT_SIZE
    overlap: int = 0
    max_level: int = 2
    table_format: str | None = None  # None: markdown, html where cells span
    tokenizer: Any = None

    @classmethod
    def from_options(cls, options: dict[str, Any]) -> ChunkOptions:
        """The chunk options of a conversion's option dict (``chunk_by``, ``chunk_size``...);
        ``UsageError`` for values that cannot work."""
        def get(key: str, default: Any) -> Any:
            value = options.get(key)
            return default if value is None else value

        made = cls(by=get("chunk_by", "title"), size=int(get("chunk_size", DEFAULT_SIZE)),
                   overlap=int(get("chunk_overlap", 0)), max_level=int(get("chunk_max_level", 2)),
                   table_format=options.get("chunk_table_format"),
                   tokenizer=options.get("chunk_tokenizer"))
        if made.by not in STRATEGIES:
            raise UsageError(f"option chunk_by must be one of {', '.join(STRATEGIES)}, "
                             f"not {made.by!r}")
        if made.table_format is not None and made.table_format not in TABLE_FORMATS:
            raise UsageError(f"option chunk_table_format must be markdown or html, not "
                             f"{made.table_format!r}")
        if made.size < 1:
            raise UsageError("option chunk_size takes a positive number")
        if not 0 <= made.overlap <= made.size // 2:
            raise UsageError(f"option chunk_overlap takes 0 to half the chunk size "
                             f"({made.size // 2}), not {made.overlap}")
        if not 1 <= made.max_level <= 9:
            raise UsageError("option chunk_max_level takes 1 to 9")
        return made

    def key(self) -> str:
        """The options as one string, for chunk ids."""
        tokenizer = self.tokenizer if self.tokenizer is None or isinstance(
            self.tokenizer, str) else getattr(self.tokenizer, "name", type(self.tokenizer).__name__)
        return (f"by={self.by};size={self.size};overlap={self.overlap};level={self.max_level};"
                f"tables={self.table_format};tokenizer={tokenizer}")


def counter(tokenizer: Any) -> Counter:
    """How sizes are counted: characters (None); tokens of a ``tokenizer.json`` file (Hugging
    Face ``tokenizers``), of a tiktoken encoding name (``cl100k_base``), of a Hugging Face
    tokenizer name (downloaded by ``tokenizers`` on first use), or of any object with
    ``encode(text)`` or a callable giving a count."""
    if tokenizer is None:
        return len
    if isinstance(tokenizer, str):
        return _named_counter(tokenizer)
    encode = getattr(tokenizer, "encode", None)
    if callable(encode):
        return lambda text: len(_ids(encode(text)))
    if callable(tokenizer):
        return tokenizer
    raise UsageError(f"option chunk_tokenizer: {tokenizer!r} is not a tokenizer")


def _ids(encoded: Any) -> Any:
    return getattr(encoded, "ids", encoded)  # tokenizers' Encoding, or a list of ids


def _named_counter(name: str) -> Counter:
    import os

    if name.endswith(".json") or os.path.isfile(name):
        tokenizers = _need("tokenizers", "tokenizers")
        try:
            tok = tokenizers.Tokenizer.from_file(name)
        except Exception as exc:
            raise UsageError(f"option chunk_tokenizer: cannot read {name}: {exc}") from None
        return lambda text: len(tok.encode(text, add_special_tokens=False).ids)
    try:
        import tiktoken
    except ImportError:
        tiktoken = None
    if tiktoken is not None and name in tiktoken.list_encoding_names():
        enc = tiktoken.get_encoding(name)
        return lambda text: len(enc.encode(text, disallowed_special=()))
    tokenizers = _need("tokenizers", "tokenizers")
    try:
        tok = tokenizers.Tokenizer.from_pretrained(name)
    except Exception as exc:
        raise UsageError(f"option chunk_tokenizer: no tokenizer {name!r} (a tiktoken "
                         f"encoding, a tokenizer.json file or a Hugging Face name): {exc}"
                         ) from None
    return lambda text: len(tok.encode(text, add_special_tokens=False).ids)


def _need(module: str, extra: str) -> Any:
    from importlib import import_module

    try:
        return import_module(module)
    except ImportError:
        raise UsageError(f"option chunk_tokenizer needs {module}: pip install "
                         f"'xparse-convert[{extra}]'") from None


class _Unit:
    """What one logical element gives a chunk: its text and, for each element it holds, where
    that element's text lies in it (``segments``: element, start, end, start in the element's
    own text or None for re-rendered table rows)."""

    __slots__ = ("kind", "text", "segments", "level", "tables", "alone", "page", "last_page",
                 "extra")

    def __init__(self, kind: str, text: str, segments: list[tuple[Element, int, int, int | None]],
                 *, level: int | None = None, tables: list[dict[str, Any]] | None = None,
                 alone: bool = False) -> None:
        self.kind = kind
        self.text = text
        self.segments = segments
        self.level = level  # heading level of a Title unit
        self.tables = tables or []
        self.alone = alone  # a part of a split table: a chunk of its own
        self.extra: list[Element] = []  # held without text of its own (a picture without OCR)
        if len(segments) == 1:  # most units: one element
            self.page = self.last_page = segments[0][0].page
        else:
            pages = [s[0].page for s in segments if s[0].page is not None]
            self.page = min(pages) if pages else None
            self.last_page = max(pages) if pages else None


class _Piece:
    __slots__ = ("unit", "start", "end", "overlap", "glue")

    def __init__(self, unit: _Unit, start: int, end: int, overlap: bool = False,
                 glue: str = SEPARATOR) -> None:
        self.unit = unit
        self.start = start
        self.end = end
        self.overlap = overlap
        self.glue = glue  # what goes before it in the chunk (nothing for the first piece)

    @property
    def text(self) -> str:
        return self.unit.text[self.start:self.end]


class Chunker:
    """Feeds on the logical element stream; hands out chunk records as chunks close.

    Holds one open chunk (at most ``size`` plus one unit being split) and the heading path."""

    def __init__(self, options: ChunkOptions, info: DocumentInfo,
                 count: Counter | None = None) -> None:
        self.options = options
        self.info = info
        self.count = count or counter(options.tokenizer)
        self.chars = self.count is len
        self.size = options.size
        self.index = 0
        self.path: list[tuple[int, str]] = []  # (level, heading text) of the open headings
        self.pieces: list[_Piece] = []
        self.measure = 0  # size of the open chunk's text
        self.has_body = False  # the open chunk holds more than headings (and overlap)
        self.headings: list[str] | None = None
        self.last_page: int | None = None
        self._key = options.key()
        self._ready: list[dict[str, Any]] = []

    # -- the stream ------------------------------------------------------------------------
    def feed(self, element: Element) -> list[dict[str, Any]]:
        """The records of the chunks that ``element`` closes."""
        for unit in self._units(element):
            self._add(unit)
        ready, self._ready = self._ready, []
        return ready

    def finish(self) -> list[dict[str, Any]]:
        """The last chunk's record."""
        self._close()
        ready, self._ready = self._ready, []
        return ready

    def chunks(self, elements: Iterable[Element]) -> Iterator[dict[str, Any]]:
        for element in elements:
            yield from self.feed(element)
        yield from self.finish()

    # -- units -----------------------------------------------------------------------------
    def _units(self, el: Element) -> list[_Unit]:
        if el.type == "Table" and el.table is not None:
            return self._table_units(el)
        if el.type in ("Image", "image"):
            return self._picture_unit(el)
        if el.type == "PageBreak":
            return []
        unit = _text_unit(el, "text")
        if unit is None:
            return []
        if el.type == "Title":
            unit.level = el.heading_level
        return [unit]

    def _picture_unit(self, el: Element) -> list[_Unit]:
        pieces = [p for p in (el, el.caption) if p is not None]
        pieces.sort(key=lambda p: p.index)
        units = _joined_unit("picture", pieces)
        if units and not any(s[0] is el for s in units[0].segments):
            units[0].extra.append(el)
        return units

    def _table_units(self, el: Element) -> list[_Unit]:
        table = el.table
        assert table is not None
        fmt = self.options.table_format or ("html" if table.has_spans else "markdown")
        by_id = {p.id: p for p in (el.parts or [el])}
        caption = _text_unit(el.caption, "caption") if el.caption is not None else None
        head_id = table.row_element_ids[0] if table.row_element_ids else el.id
        renderer = _TableText(table, fmt)
        h = min(table.header_rows, table.n_rows)
        whole = renderer.part(h, table.n_rows)
        units: list[_Unit] = []
        lead = caption.text + SEPARATOR if caption is not None else ""
        # the open chunk's headings go with the table's first part (rule 2): room for them
        pages = [p for p in (el.page, caption.page if caption is not None else None)
                 if p is not None]
        page = min(pages) if pages else None
        held = self._held_room(page)
        fits = held + self.count(lead + whole.text) <= self.size or (
            bool(self.pieces) and not self._closes_before(None, page) and
            self._fits(lead + whole.text))  # it joins the open chunk as it is
        if fits:
            units.append(self._table_unit(el, table, whole, h, table.n_rows, caption, by_id,
                                          head_id, header_rows=h, alone=False))
            return units
        if h == table.n_rows:  # header rows alone: nothing to repeat, they are cut as rows
            h = 0
            renderer = _TableText(table, fmt, header_rows=0)
        if caption is not None and self.count(lead) + renderer.fixed_size(self.count, h) + \
                renderer.row_size(self.count, h, h) > self.size:
            units.append(caption)  # too long to lead a part: text of its own, cut as text
            caption = None
        start = h
        first = True
        while start < table.n_rows:
            lead = caption.text + SEPARATOR if first and caption is not None else ""
            stop = self._rows_that_fit(renderer, lead, h, start, held if first else 0)
            part = renderer.part(start, stop)
            units.append(self._table_unit(el, table, part, start, stop,
                                          caption if first else None, by_id, head_id,
                                          header_rows=h, alone=True))
            first = False
            start = stop
            if stop >= table.n_rows:
                break
        return units

    def _rows_that_fit(self, renderer: _TableText, lead: str, h: int, start: int,
                       held: int = 0) -> int:
        """The end of the longest run of body rows from ``start`` that fits with the header
        beside ``held`` (one row at least; without ``held`` when not even one fits beside
        it)."""
        base = held + self.count(lead) + renderer.fixed_size(self.count, start)
        total = base + renderer.row_size(self.count, start, start)
        if held and total > self.size:
            return self._rows_that_fit(renderer, lead, h, start)
        stop = start + 1
        while stop < renderer.table.n_rows:
            grown = total + renderer.row_size(self.count, stop, start)
            if grown > self.size:
                break
            total = grown
            stop += 1
        return stop

    def _table_unit(self, el: Element, table: Table, part: _TablePart, start: int, stop: int,
                    caption: _Unit | None, by_id: dict[str, Element], head_id: str | None,
                    *, header_rows: int, alone: bool) -> _Unit:
        segments: list[tuple[Element, int, int, int | None]] = []
        text = part.text
        offset = 0
        if caption is not None:
            segments.extend(caption.segments)
            offset = len(caption.text) + len(SEPARATOR)
            text = caption.text + SEPARATOR + text
        for row_id, a, b in part.groups:
            source = by_id.get(row_id or "", el) if row_id != "header" else \
                by_id.get(head_id or "", el)
            if segments and segments[-1][0] is source and segments[-1][2] == offset + a - 1:
                segments[-1] = (source, segments[-1][1], offset + b, None)  # the next line
            else:
                segments.append((source, offset + a, offset + b, None))
        info = {"table_id": el.id, "row_start": start, "row_end": stop,
                "header_rows": header_rows}
        return _Unit("table", text, segments, tables=[info], alone=alone)

    # -- packing ---------------------------------------------------------------------------
    def _closes_before(self, level: int | None, page: int | None) -> bool:
        """True when rule 2 closes the open chunk before a unit of this heading level (None:
        not a heading) starting on ``page``."""
        if not self.pieces:
            return False
        by = self.options.by
        if by == "element":
            return True
        if by == "title":
            if level is None or level > self.options.max_level:
                return False
            # the open chunk stays open only for headings this one comes under (they lead
            # into its section); overlap never crosses it
            levels = [p.unit.level for p in self.pieces if not p.overlap]
            return not levels or not all(lv is not None and lv < level for lv in levels)
        if by == "page":
            return page is not None and self.last_page is not None and page != self.last_page
        return False

    def _holds_headings(self) -> bool:
        """True when the open chunk holds headings and nothing else (overlap aside): they
        must go with what follows (rule 2)."""
        return not self.has_body and any(not p.overlap for p in self.pieces)

    def _trailing_headings(self) -> int:
        """Where the headings that end the open chunk start, after its body (``len(pieces)``
        when it ends with body, or holds no body)."""
        pieces = self.pieces
        k = len(pieces)
        if not self.has_body:
            return k
        while k > 0 and pieces[k - 1].unit.level is not None and not pieces[k - 1].overlap:
            k -= 1
        return k

    def _held_room(self, page: int | None) -> int:
        """The room taken from a body unit starting on ``page`` by the headings it takes
        with it: the open chunk when that holds only headings, else the headings ending it
        (they move on when the chunk closes by size); 0 when there are none or rule 2
        closes the chunk first."""
        if self._closes_before(None, page):
            return 0
        if self._holds_headings():
            held = self.pieces
        else:
            held = self.pieces[self._trailing_headings():]
            if not held:
                return 0
        return self.count(self._text(held) + SEPARATOR)

    def _close_by_size(self, carry: bool) -> None:
        """Close the open chunk because what comes next does not fit: the headings ending
        it move on with what they head (no overlap then: they start a section), the rest is
        emitted (with ``carry``, passing its overlap on when nothing moves)."""
        k = self._trailing_headings()
        moving = self.pieces[k:]
        if not moving:
            self._close(carry=carry)
            return
        self.pieces = self.pieces[:k]
        self._close()
        for piece in moving:
            self._append(_Piece(piece.unit, piece.start, piece.end))

    def _add(self, unit: _Unit) -> None:
        if self._closes_before(unit.level, unit.page):
            self._close()
        if unit.level is not None:
            while self.path and self.path[-1][0] >= unit.level:
                self.path.pop()
            self.path.append((unit.level, " ".join(unit.text.split())))
        if unit.alone:  # a table part: a chunk of its own, with the headings before it
            if self.has_body:
                self._close_by_size(carry=False)
            # (beside a part too large on its own too: it is flagged either way, and they
            # lead its text)
            if not (self._holds_headings() and (self._fits(unit.text) or
                                                self.count(unit.text) > self.size)):
                self._close()
            self._append(_Piece(unit, 0, len(unit.text)))
            self._close()
            return
        if self._fits(unit.text):
            self._append(_Piece(unit, 0, len(unit.text)))
            return
        if self.has_body:
            self._close_by_size(carry=True)
            if self._fits(unit.text):
                self._append(_Piece(unit, 0, len(unit.text)))
                return
        self._drop_overlap()
        if not self.pieces and self.count(unit.text) <= self.size:
            self._append(_Piece(unit, 0, len(unit.text)))
            return
        if unit.kind == "table":  # whole because it fits alone: its rows are never cut
            self._close()
            self._append(_Piece(unit, 0, len(unit.text)))
            return
        self._split(unit)  # beside the headings it follows, when there are some

    def _fits(self, text: str) -> bool:
        if not self.pieces:
            return self.count(text) <= self.size
        if self.chars:
            return self.measure + len(SEPARATOR) + len(text) <= self.size
        return self.count(self._text() + SEPARATOR + text) <= self.size

    def _append(self, piece: _Piece) -> None:
        if not self.pieces:
            piece.glue = ""
            self.measure = 0
        self.pieces.append(piece)
        if self.chars:  # characters add up; tokens across a join need a recount
            self.measure += len(piece.glue) + piece.end - piece.start
        else:
            self.measure = self.count(self._text())
        if not piece.overlap and piece.unit.level is None:
            if not self.has_body:
                self.headings = [text for _, text in self.path]
            self.has_body = True
        if piece.unit.last_page is not None:
            self.last_page = piece.unit.last_page

    def _drop_overlap(self) -> None:
        """A unit about to be split overlaps within itself instead."""
        if self.pieces and all(p.overlap for p in self.pieces):
            self.pieces = []
            self.measure = 0

    def _split(self, unit: _Unit) -> None:
        """Rule 3 for a long text unit: every piece but the last is a chunk; the last stays
        open.  A piece after the first starts with the overlap of the one before (rule 4)."""
        text = unit.text
        start = 0
        while True:
            glue = ""
            room = self.size
            if self.pieces:  # headings in front, or the overlap of the piece before
                before = self.pieces[-1]
                glue = text[before.end:start] if before.unit is unit else SEPARATOR
                room = self.size - (self.measure + len(glue) if self.chars else
                                    self.count(self._text() + glue))
                if room < 1:  # nothing fits beside them
                    if all(p.overlap for p in self.pieces):
                        self.pieces, self.measure = [], 0
                    else:
                        self._close()
                    continue
            end, following = _cut(text, start, room, self.count)
            self._append(_Piece(unit, start, end, glue=glue))
            if following >= len(text):
                return
            self._close()
            if self.options.overlap:
                q = _overlap_start(text, start, end, self.options.overlap, self.count)
                if q < end:
                    self._append(_Piece(unit, q, end, overlap=True, glue=""))
            start = following

    def _text(self, pieces: list[_Piece] | None = None) -> str:
        """The text of ``pieces`` (the open chunk's by default) as a chunk of them holds it:
        the first one's glue left out."""
        pieces = self.pieces if pieces is None else pieces
        return "".join((p.glue if i else "") + p.text for i, p in enumerate(pieces))

    def _close(self, carry: bool = False) -> None:
        """Emit the open chunk (when it holds more than overlap); with ``carry``, open the
        next one with its overlap (rule 4)."""
        pieces = self.pieces
        if not pieces or all(p.overlap for p in pieces):
            self.pieces = []
            self.measure = 0
            return
        self._ready.append(self._record(pieces))
        self.pieces = []
        self.measure = 0
        self.has_body = False
        self.headings = None
        last = pieces[-1]
        if carry and self.options.overlap and last.unit.kind != "table" and not last.overlap:
            q = _overlap_start(last.unit.text, last.start, last.end, self.options.overlap,
                               self.count)
            if q < last.end:
                self._append(_Piece(last.unit, q, last.end, overlap=True))

    def _record(self, pieces: list[_Piece]) -> dict[str, Any]:
        info = self.info
        parts: list[str] = []
        spans: list[dict[str, Any]] = []
        ids: dict[str, Element] = {}
        tables: list[dict[str, Any]] = []
        offset = 0
        overlap = 0
        for piece in pieces:
            start, end, over = piece.start, piece.end, piece.overlap
            if piece.glue:
                parts.append(piece.glue)
                offset += len(piece.glue)
            if over:
                overlap = offset + end - start
            shift = offset - start  # from the unit's text to the chunk's
            for el, s, e, own in piece.unit.segments:
                lo = s if s > start else start
                hi = e if e < end else end
                if lo >= hi:
                    continue
                spans.append({
                    "element_id": el.id, "start": shift + lo, "end": shift + hi,
                    "element_start": None if own is None else own + lo - s, "overlap": over,
                })
                if not over and el.id not in ids:
                    ids[el.id] = el
            if not over:
                tables.extend(piece.unit.tables)
                for el in piece.unit.extra:
                    ids.setdefault(el.id, el)
            parts.append(piece.unit.text[start:end])
            offset += end - start
        text = "".join(parts)
        if find_bad(text) is not None:  # one for one: the spans' offsets stay true
            text = replace_bad(text)
        types: dict[str, int] = {}
        pages: set[int] = set()
        boxes = []
        for el in ids.values():
            types[el.type] = types.get(el.type, 0) + 1
            if el.page is not None:
                pages.add(el.page)
            boxes.append({"element_id": el.id, "page": el.page, "coordinates": el.coordinates})
        size = len(text) if self.chars else self.count(text)
        headings = self.headings if self.headings is not None else [t for _, t in self.path]
        record = {
            "_schema": CHUNK_SCHEMA, "_input": info.name, "_file_id": info.file_id,
            "_file_name": info.filename, "chunk_id": self._id(), "chunk_index": self.index,
            "text": text, "headings": headings, "element_ids": list(ids), "pages": sorted(pages),
            "boxes": boxes, "types": types, "tables": tables, "spans": spans, "size": size,
            "oversize": size > self.size, "overlap": overlap,
        }
        self.index += 1
        return record

    def _id(self) -> str:
        origin = self.info.file_id or self.info.name
        digest = hashlib.sha256(f"{origin}\0{self.index}\0{self._key}".encode(
            "utf-8", "replace")).hexdigest()
        # str(uuid.UUID(bytes=digest[:16])), written out: the uuid module's checks cost
        # more than the hash
        return f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"


# -- text units -----------------------------------------------------------------------------
def _own_text(el: Element) -> list[tuple[Element, str, str, int]]:
    """(fragment, glue before it, its text, where that text starts in its raw text) of an
    element, a joined chain fragment by fragment."""
    if not el.parts:
        return [(el, "", el.text, 0)]
    tail = sum(len(p.glue) + len(p.text) for p in el.parts[1:])
    head_len = len(el.text) - tail
    out = [(el, "", el.text[:head_len], 0)]
    out.extend((p, p.glue, p.text, p.text_start) for p in el.parts[1:])
    return out


def _text_unit(el: Element | None, kind: str) -> _Unit | None:
    if el is None:
        return None
    if not el.parts:  # the common case of _joined_unit: one element, one fragment
        text = el.text
        body = text.strip()
        if not body:
            return None
        return _Unit(kind, body, [(el, 0, len(body), len(text) - len(text.lstrip()))])
    return (_joined_unit(kind, [el]) or [None])[0]


def _joined_unit(kind: str, elements: list[Element]) -> list[_Unit]:
    """One unit of the texts of ``elements`` (a picture and its caption; one element),
    stripped, a blank line between elements, with each fragment's segment."""
    pieces: list[str] = []
    segments: list[tuple[Element, int, int, int | None]] = []
    length = 0
    for el in elements:
        frags = _own_text(el)
        joined = "".join(g + t for _, g, t, _ in frags)
        lead = len(joined) - len(joined.lstrip())
        body = joined.strip()
        if not body:
            continue
        if pieces:
            pieces.append(SEPARATOR)
            length += len(SEPARATOR)
        base = length - lead  # where the unstripped text would start
        pos = 0
        for frag, glue, text, own in frags:
            pos += len(glue)
            s, e = max(pos, lead), min(pos + len(text), lead + len(body))
            if s < e:
                segments.append((frag, base + s, base + e, own + s - pos))
            pos += len(text)
        pieces.append(body)
        length += len(body)
    if not pieces:
        return []
    return [_Unit(kind, "".join(pieces), segments)]


# -- cutting text ---------------------------------------------------------------------------
def _longest(text: str, start: int, limit: int, count: Counter) -> int:
    """The largest end such that ``text[start:end]`` counts at most ``limit`` (at least
    ``start + 1``)."""
    if count is len:
        return min(len(text), start + limit)
    if count(text[start:]) <= limit:
        return len(text)
    lo, hi = start + 1, len(text)  # count(text[start:hi]) > limit
    step = max(limit, 1)
    while lo + step < hi and count(text[start:lo + step]) <= limit:  # gallop
        lo += step
        step *= 2
    hi = min(hi, lo + step)
    while lo + 1 < hi:
        mid = (lo + hi) // 2
        if count(text[start:mid]) <= limit:
            lo = mid
        else:
            hi = mid
    return lo


def _cut(text: str, start: int, limit: int, count: Counter) -> tuple[int, int]:
    """(end of the piece from ``start``, start of what follows): at the last sentence end
    that fits, else the last space, else as much as fits."""
    hi = _longest(text, start, limit, count)
    if hi >= len(text):
        return len(text.rstrip()), len(text)
    window = text[start:hi + 1]  # a space just at ``hi`` counts
    found: list[tuple[int, int] | None] = []
    for pattern in (_SENTENCE, _SPACE):
        best: tuple[int, int] | None = None
        for match in pattern.finditer(window):
            end = match.start() + len(match.group().rstrip())  # punctuation stays
            if end > 0 and start + end <= hi:
                best = (start + end, start + match.end())
        found.append(best)
    sentence, space = found
    # a sentence end that leaves most of the room unused gives way to a later space
    if sentence is not None and (space is None or 2 * (sentence[0] - start) >= hi - start):
        return sentence
    if space is not None:
        return space
    return hi, hi


def _overlap_start(text: str, lo: int, end: int, overlap: int, count: Counter) -> int:
    """Where the overlap of ``text[lo:end]`` starts: its last ``overlap`` characters (or
    tokens), moved forward to just after a space when there is one in them."""
    if overlap <= 0 or end <= lo:
        return end
    if count is len:
        q = max(lo, end - overlap)
    else:
        low, high = lo, end  # smallest q with count(text[q:end]) <= overlap
        while low < high:
            mid = (low + high) // 2
            if count(text[mid:end]) <= overlap:
                high = mid
            else:
                low = mid + 1
        q = low
    if q > lo and not text[q - 1].isspace():
        space = _SPACE.search(text, q, end)
        if space is not None and space.end() < end:
            q = space.end()
    return q


# -- tables as text -------------------------------------------------------------------------
@dataclass
class _TablePart:
    text: str
    groups: list[tuple[str | None, int, int]]  # (row element id or "header", start, end)


class _TableText:
    """A table's rows as lines of Markdown or HTML, so that a part is the header lines plus
    whole row lines; sizes are measured per line."""

    def __init__(self, table: Table, fmt: str, header_rows: int | None = None) -> None:
        self.table = table
        self.fmt = fmt
        self.h = min(table.header_rows if header_rows is None else header_rows, table.n_rows)
        self.by_row: list[list[Cell]] = list(table.rows()) if fmt == "html" else []
        self.grid = table.text_grid() if fmt == "markdown" else []
        self.tall = [c for c in table.cells if c.row_span > 1] if fmt == "html" else []
        # an HTML row's line changes with the part's end only where a cell of it reaches past
        # that end: the row below its lowest cell
        self.reach = list(range(1, table.n_rows + 1)) if fmt == "html" else []
        for cell in self.tall:
            self.reach[cell.row] = max(self.reach[cell.row], cell.row + cell.row_span)
        self._lines: dict[tuple[int, int], str] = {}  # (row, end that matters) -> line
        self._sizes: dict[int, int] = {}
        self._fixed: int | None = None

    def _md_line(self, row: int) -> str:
        return "| " + " | ".join(_md_cell(t) for t in self.grid[row]) + " |"

    def _html_line(self, row: int, start: int, stop: int, header: bool) -> str:
        cells = self.by_row[row]
        if row == start and not header:
            # a cell spanning down into this part from a row before it (a header row's too:
            # its span stops at the header's end) shows here again
            cells = sorted([*cells, *(c for c in self.tall if c.row < start and
                                      c.row + c.row_span > start)], key=lambda c: c.col)
        tag = "th" if header else "td"
        opening, closing = f"<{tag}>", f"</{tag}>"
        out = ["<tr>"]
        for cell in cells:
            text = cell.text
            if "&" in text or "<" in text or ">" in text:
                text = html.escape(text, quote=False)
            if cell.row_span == 1 and cell.col_span == 1:  # most cells
                out.append(opening + text + closing)
                continue
            attrs = ""
            if cell.row_span > 1:  # a span of one stays one in any part
                span = min(cell.row + cell.row_span, stop) - max(cell.row, start)
                if span > 1:
                    attrs = f' rowspan="{span}"'
            if cell.col_span > 1:
                attrs += f' colspan="{cell.col_span}"'
            out.append(f"<{tag}{attrs}>{text}{closing}")
        out.append("</tr>")
        return "".join(out)

    def _line(self, row: int, start: int, stop: int) -> str:
        """A row's line in the part ``start:stop``; a table split in parts asks for most rows
        several times (sizes, then the part), so lines are kept."""
        header = row < self.h
        if self.fmt == "html" and row == start and not header:
            return self._html_line(row, start, stop, False)  # with the cells from above
        key = (row, 0 if self.fmt == "markdown" or header else min(stop, self.reach[row]))
        line = self._lines.get(key)
        if line is None:
            if self.fmt == "markdown":
                line = self._md_line(row)
            else:
                line = self._html_line(row, 0 if header else start, self.h if header else stop,
                                       header)
            self._lines[key] = line
        return line

    def fixed_size(self, count: Counter, start: int) -> int:
        """Size of the header lines and the wrapping of a part."""
        if self._fixed is None:
            part = self.part(start, start)
            self._fixed = count(part.text)
        return self._fixed

    def row_size(self, count: Counter, row: int, start: int) -> int:
        if row == start and self.fmt == "html":
            return count(self._line(row, start, self.table.n_rows)) + 1
        size = self._sizes.get(row)
        if size is None:
            size = count(self._line(row, 0, self.table.n_rows)) + 1
            self._sizes[row] = size
        return size

    def part(self, start: int, stop: int) -> _TablePart:
        """The header rows and body rows ``start:stop`` as one text."""
        table = self.table
        line = self._line
        lines = [line(row, start, stop) for row in range(self.h)]
        owners: list[str | None] = ["header"] * len(lines)
        if self.fmt == "markdown" and self.h:
            lines.append("| " + " | ".join("---" for _ in range(table.n_cols)) + " |")
            owners.append("header")
        ids = table.row_element_ids
        lines.extend([line(row, start, stop) for row in range(start, stop)])
        owners.extend([ids[row] if row < len(ids) else None for row in range(start, stop)])
        if self.fmt == "html":
            lines = ["<table>", *lines, "</table>"]
            owners = [None, *owners, None]
        groups: list[tuple[str | None, int, int]] = []
        pos = 0
        for text, owner in zip(lines, owners):  # each line's place in the part, for spans
            end = pos + len(text)
            if owner is not None:
                groups.append((owner, pos, end))
            pos = end + 1
        return _TablePart("\n".join(lines), groups)


def _md_cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())
