"""The legacy ``pdf_to_markdown`` result mapped onto the schema 1.x element shape.

See ``legacy-result.md`` in the shared reference: 0-based cells, pixel positions normalised by
the page size, outline levels as title depths, captions by ``caption_id``, images from page
data where the page data links them.  The mapped dict is what JSONL writes for legacy input,
so every legacy field that has no 1.x home is kept under ``metadata.legacy``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import IO, Any, NamedTuple

from .model import PageInfo
from .values import is_int

_MAPPED_KEYS = frozenset({
    "type", "sub_type", "page_id", "paragraph_id", "outline_level", "content", "position",
    "text", "cells", "caption_id", "image_url",
})


def legacy_id(page: object, paragraph: object) -> str:
    """Element id of a legacy block: paragraph ids restart on every page, so the page is part
    of it (``p3-12``)."""
    return f"p{page}-{paragraph}"


class _Span(NamedTuple):
    """Where a picture's base64 text is in the spill file."""

    offset: int
    length: int


@dataclass
class _ImageBlock:
    block_id: Any  # the structured block's id: the detail paragraph_id in newer engines
    position: Any
    spans: list[_Span]  # the base64 text of its pictures in the spill file


@dataclass
class _PageImages:
    blocks: list[_ImageBlock] = field(default_factory=list)  # image blocks, in page order
    served: int = 0  # image blocks of ``detail`` asked for on this page so far

    @property
    def all_have_data(self) -> bool:
        return all(block.spans for block in self.blocks)


class LegacyPages:
    """Page sizes and the sub-images that ``pages[].content``/``structured`` link to blocks.

    Fed one page at a time (the reader never holds the ``pages`` array); image base64 text is
    spilled to a temporary file so memory stays flat however many pictures the pages hold.
    """

    def __init__(self, keep_images: bool = True) -> None:
        self.pages: dict[int, PageInfo] = {}
        self._images: dict[int, _PageImages] = {}
        self._keep_images = keep_images
        self._spill_file: IO[bytes] | None = None  # made on the first picture
        self._offset = 0
        self.zero_based: bool | None = None
        self.unmatched: list[str] = []  # image blocks whose page has pictures, none theirs

    @property
    def _spill(self) -> IO[bytes]:
        if self._spill_file is None:
            self._spill_file = tempfile.TemporaryFile()
        return self._spill_file

    def close(self) -> None:
        if self._spill_file is not None:
            self._spill_file.close()

    def add_page(self, page: Any) -> None:
        if not isinstance(page, dict):
            return
        page_id = page.get("page_id")
        if not is_int(page_id):
            return
        if self.zero_based is None:
            self.zero_based = page_id == 0
        number = page_id + 1 if self.zero_based else page_id
        width, height = page.get("width"), page.get("height")
        self.pages[number] = PageInfo(
            number,
            float(width) if isinstance(width, (int, float)) and width > 0 else None,
            float(height) if isinstance(height, (int, float)) and height > 0 else None,
            raw={k: v for k, v in page.items() if k not in ("content", "structured")},
        )
        content = page.get("content")
        structured = page.get("structured")
        if not (self._keep_images and isinstance(content, list)
                and isinstance(structured, list)):
            return
        by_id: dict[Any, str] = {}
        for item in content:
            if isinstance(item, dict) and item.get("type") == "image":
                data = item.get("data")
                b64 = data.get("base64") if isinstance(data, dict) else None
                if isinstance(b64, str) and b64:
                    by_id[item.get("id")] = b64
        if not by_id:
            return
        images = self._images.setdefault(number, _PageImages())
        for block in structured:
            if not isinstance(block, dict) or block.get("type") != "image":
                continue
            ids = block.get("content")
            spans = []
            for image_id in ids if isinstance(ids, list) else ():
                b64 = by_id.get(image_id) if isinstance(image_id, (int, str)) else None
                if b64 is None:
                    continue
                data = b64.encode("ascii", "ignore")
                self._spill.write(data)
                spans.append(_Span(self._offset, len(data)))
                self._offset += len(data)
            images.blocks.append(_ImageBlock(block.get("id"), block.get("pos"), spans))

    def has_images(self, page: int) -> bool:
        images = self._images.get(page)
        return images is not None and any(block.spans for block in images.blocks)

    def image_for(self, page: int, position: Any, paragraph_id: Any = None) -> str | None:
        """Base64 of the page picture of a ``detail`` image block, matched by these rules in
        turn (call once per image block, in input order):

        1. the structured block whose ``id`` is the block's ``paragraph_id``;
        2. by order on the page, when every image block of the page has picture data (some
           engine versions give ``structured`` positions in another coordinate space than
           ``detail``, so boxes cannot be compared);
        3. the block whose box overlaps the block's box most (intersection over union at
           least 0.5).
        """
        images = self._images.get(page)
        if not images:
            return None
        order = images.served
        images.served += 1
        if paragraph_id is not None and not isinstance(paragraph_id, bool):
            for block in images.blocks:
                if block.block_id == paragraph_id and block.spans:
                    return self._read(block)
        if images.all_have_data and order < len(images.blocks):
            return self._read(images.blocks[order])
        if not _is_box(position):
            return None
        best, best_score = None, 0.0
        for block in images.blocks:
            if block.spans and _is_box(block.position):
                score = _overlap(block.position, position)
                if score > best_score:
                    best, best_score = block, score
        return self._read(best) if best is not None and best_score >= 0.5 else None

    def _read(self, block: _ImageBlock) -> str:
        offset, length = block.spans[0]
        self._spill.seek(offset)
        data = self._spill.read(length)
        self._spill.seek(0, 2)
        return data.decode("ascii")


def _is_box(pos: Any) -> bool:
    return isinstance(pos, list) and len(pos) >= 8 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in pos[:8])


def _bounds(pos: list[float]) -> tuple[float, float, float, float]:
    xs, ys = pos[0:8:2], pos[1:8:2]
    return min(xs), min(ys), max(xs), max(ys)


def _overlap(a: list[float], b: list[float]) -> float:
    """Intersection over union of two boxes."""
    ax0, ay0, ax1, ay1 = _bounds(a)
    bx0, by0, bx1, by1 = _bounds(b)
    iw = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    ih = max(0.0, min(ay1, by1) - max(ay0, by0))
    inter = iw * ih
    union = (ax1 - ax0) * (ay1 - ay0) + (bx1 - bx0) * (by1 - by0) - inter
    return inter / union if union > 0 else 0.0


def _element_type(item: dict[str, Any], page: PageInfo | None) -> str:
    kind = item.get("type")
    sub = item.get("sub_type")
    outline = item.get("outline_level")
    if kind == "table":
        return "Table"
    if kind == "image":
        return "Image"
    if sub == "table_title":
        return "TableCaption"
    if sub == "image_title":
        return "FigureCaption"
    if sub == "header":
        return "Header"
    if sub == "footer":
        return "Footer"
    if item.get("content") == 1:
        # Page furniture without a sub_type: above the page's middle it is a header.
        pos = item.get("position")
        if page is not None and page.height and _is_box(pos):
            return "Header" if _bounds(pos)[1] < page.height / 2 else "Footer"
        return "Header"
    if is_int(outline) and outline >= 0:
        return "Title"
    if sub == "text_title":
        return "Title"
    return "NarrativeText"


def normalise(position: Any, page: PageInfo | None) -> tuple[list[float] | None, str]:
    """Pixel position -> normalised coordinates when the page size is known."""
    if not _is_box(position):
        return None, "normalized"
    if page is not None and page.width and page.height:
        w, h = page.width, page.height
        return [round(v / (w if i % 2 == 0 else h), 6) for i, v in enumerate(position[:8])], \
            "normalized"
    return [float(v) for v in position[:8]], "pixel"


def map_detail(item: dict[str, Any], pages: LegacyPages | None) -> tuple[dict[str, Any], str]:
    """One ``result.detail[]`` block as a 1.x element dict, and its coordinate unit."""
    page_number = item.get("page_id")
    page = pages.pages.get(page_number) if pages is not None and isinstance(
        page_number, int) else None
    type_ = _element_type(item, page)
    coords, unit = normalise(item.get("position"), page)
    element: dict[str, Any] = {
        "element_id": legacy_id(page_number, item.get("paragraph_id")),
        "type": type_,
    }
    sub = item.get("sub_type")
    if isinstance(sub, str) and sub and type_ in ("Table", "Image"):
        element["sub_type"] = sub
    element["text"] = item.get("text", "")
    element["page_number"] = page_number
    if coords is not None:
        element["coordinates"] = coords
    element["metadata"] = _metadata(item, type_, page_number)
    if type_ == "Table":
        cells = item.get("cells")
        if isinstance(cells, list):
            element["table_structure"] = {"cells": _cells(cells, page)}
    if type_ == "Image":
        image_data = _image_data(item, pages, page_number, element["element_id"])
        if image_data:
            element["image_data"] = image_data
    return element, unit


def _metadata(item: dict[str, Any], type_: str, page_number: Any) -> dict[str, Any]:
    """The 1.x metadata of a block: title depth from its outline level, the caption link,
    the pages a split block covers, and the legacy fields kept under ``legacy``."""
    metadata: dict[str, Any] = {}
    outline = item.get("outline_level")
    if type_ == "Title":
        metadata["category_depth"] = outline if isinstance(outline, int) and outline >= 0 else 0
    caption = item.get("caption_id")
    if isinstance(caption, dict) and "paragraph_id" in caption:
        metadata["ref_element_id"] = legacy_id(caption.get("page_id", page_number),
                                               caption["paragraph_id"])
    split_pages = item.get("split_section_page_ids")
    if isinstance(split_pages, list) and split_pages:
        metadata["source_pages"] = split_pages
    legacy_rest = {k: v for k, v in item.items() if k not in _MAPPED_KEYS}
    legacy_rest["paragraph_id"] = item.get("paragraph_id")
    if "content" in item:
        legacy_rest["content"] = item["content"]
    if "outline_level" in item:
        legacy_rest["outline_level"] = outline
    metadata["legacy"] = legacy_rest
    return metadata


def _cells(cells: list[Any], page: PageInfo | None) -> list[dict[str, Any]]:
    """Legacy table cells as ``table_structure`` cells: 1-based, positions normalised."""
    mapped = []
    for cell in cells:
        if not isinstance(cell, dict):
            continue
        c = {k: v for k, v in cell.items() if k not in ("row", "col", "position")}
        row, col = cell.get("row"), cell.get("col")
        c["row"] = row + 1 if is_int(row) else row
        c["col"] = col + 1 if is_int(col) else col
        cell_coords, _ = normalise(cell.get("position"), page)
        if cell_coords is not None:
            c["coordinates"] = cell_coords
        mapped.append(c)
    return mapped


def _image_data(item: dict[str, Any], pages: LegacyPages | None, page_number: Any,
                element_id: str) -> dict[str, Any]:
    """An image block's ``image_data``: its URL, and the picture of ``pages[].content``
    matched to it (an unmatched one on a page that has pictures is noted for a warning)."""
    image_data: dict[str, Any] = {}
    url = item.get("image_url")
    if isinstance(url, str) and url:
        image_data["image_url"] = url
    if pages is not None and isinstance(page_number, int):
        b64 = pages.image_for(page_number, item.get("position"), item.get("paragraph_id"))
        if b64:
            image_data["base64"] = b64
        elif pages.has_images(page_number):
            pages.unmatched.append(element_id)
    return image_data
