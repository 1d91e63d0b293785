#!/usr/bin/env python3
"""Deterministic generator of synthetic TextIn xParse parse results (schema 1.3.0).

Writes the API envelope ``{"code":200,"message":"success","data":{...}}`` for an N-page document,
streaming: memory stays flat however many pages are asked for. The same arguments always give a
byte-identical file.

Every page has a Header, 1-2 Titles, 6-12 mixed Chinese/English paragraphs, a Footer and a
PageNumber; some pages add a list run, a Formula or a CodeSnippet. Every 3rd page has a captioned
Table with row/col spans. A cross-page table runs over 3 pages the way engines emit one: its
captioned first fragment ends the body of pages 1, 11, 21, ...; the second fragment is the only
body content of the next page (between its Header and Footer); the third opens the body of the page
after that, followed by that page's own content (``is_continuation`` / ``continuation_of``, header
row repeated in every fragment). With ``images`` every 2nd page has a captioned Image holding a real
PNG (except on the middle page of a chain); with ``char_details`` every text element and table cell
carries one char_details entry per character. With ``formulas`` every page but a chain's middle one
has a display Formula, a paragraph with an inline ``$...$`` in its text, and a paragraph with an
inline formula in its text that an ``objects`` entry (``type: formula``, ``text_range``,
``display_mode: inline``) points at; the rest of the page is the same as without.

    python benchmarks/generate.py --pages 1000 [--images] [--char-details] [--formulas] [--seed 0]
        -o out.json
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

SCHEMA_VERSION = "1.3.0"
PAGE_WIDTH, PAGE_HEIGHT, DPI = 1191, 1684, 144

TABLE_EVERY = 3  # pages 3, 6, 9, ... carry a captioned table
IMAGE_EVERY = 2  # pages 2, 4, 6, ... carry a captioned image (with images=True)
CHAIN_EVERY = 10  # a cross-page table starts on pages 1, 11, 21, ...
CHAIN_PAGES = 3  # ... and spans this many pages
_CHAIN_FULL_ROWS = (34, 40)  # body rows of a fragment that fills a whole page (the middle pages)

# Tuned so that a page holds about 3,600 characters: ~9 KB of markdown and ~0.9 MB of char_details
# per page, the sizes of real results.
_PARAGRAPH_CHARS = (150, 560)
_ZH_SHARE = 0.85  # share of sentences in Chinese

# Page layout, as fractions of the page.
_LEFT, _RIGHT = 0.08, 0.92
_TOP, _BOTTOM = 0.065, 0.935
_GAP = 0.008
_LINE = 0.0165  # height of one text line
_CPL = 48  # characters per full-width line
_ROW = 0.021  # height of one table row
_IMAGE_SCALE = 2.0  # an image is drawn at twice its pixel size

# fmt: off
_ZH_SUBJECTS = ("公司", "本集团", "管理层", "研发团队", "该业务板块", "董事会", "海外事业部",
                "供应链中心", "数据平台团队", "各子公司")
_ZH_TIMES = ("在报告期内", "{y}年上半年", "{y}年第{q}季度", "过去十二个月中", "截至{y}年末",
             "本年度")
_ZH_VERBS = ("持续推进", "显著提升了", "重点优化了", "全面评估了", "稳步扩大了", "深入分析了",
             "有效控制了", "系统梳理了")
_ZH_OBJECTS = ("营业收入与利润结构", "海外市场的拓展节奏", "研发投入的转化效率",
               "客户满意度与复购率", "运营成本及期间费用率", "产品质量管理体系",
               "数字化转型的整体进程", "风险识别与内部控制框架", "核心零部件的供应保障",
               "新能源业务的产能布局")
_ZH_TAILS = ("，同比增长{n}％。", "，较上年同期提高{d}个百分点。",
             "，预计将于{y}年实现阶段性目标。", "，为后续发展奠定了坚实基础。",
             "，整体表现基本符合预期。", "，但仍需关注宏观环境变化带来的不确定性。",
             "，相关成果已在多个项目中得到验证。")
_EN_SUBJECTS = ("Revenue", "Operating margin", "The project team", "Gross profit",
                "Customer retention", "The R&D pipeline", "Net operating cash flow",
                "Overseas market share", "Unit production cost")
_EN_VERBS = ("grew steadily", "remained broadly stable", "improved significantly",
             "declined slightly", "exceeded internal expectations", "recovered gradually")
_EN_TAILS = (" in Q{q} {y}.", " compared with the same period of {y}.",
             ", driven by strong demand in overseas markets.",
             ", according to the latest management estimates.",
             " despite ongoing supply chain pressure.", " (p < 0.05, n = {n}).",
             ", reaching {n}.{d} billion yuan.")
_TITLE_TOPICS = ("经营情况讨论与分析 Business Review", "财务报表分析", "风险因素 Risk Factors",
                 "研发投入与技术进展", "市场环境 Market Overview", "公司治理", "海外业务拓展",
                 "盈利预测与估值 Valuation", "产能与供应链", "ESG 与社会责任")
_ROW_LABELS = ("营业收入（百万元）", "营业收入增长率", "归母净利润（百万元）",
               "毛利率 Gross margin", "摊薄每股收益（元）", "每股经营性现金流", "ROE（摊薄）",
               "P/E", "P/B", "研发费用率", "资产负债率", "存货周转天数")
_GROUP_LABELS = ("盈利能力", "成长能力", "偿债能力", "营运能力 Efficiency", "估值指标")
_FORMULAS = ("$$E = mc^2$$", r"$$\int_0^1 x^2\,dx = \frac{1}{3}$$",
             r"$$\sum_{i=1}^{n} i = \frac{n(n+1)}{2}$$", "$$f(x) = x^2 + 1$$",
             r"$$\sigma = \sqrt{\frac{1}{N}\sum_{i=1}^{N}(x_i-\mu)^2}$$",
             r"$$\mathrm{ROE} = \frac{\text{净利润}}{\text{净资产}} \times 100\%$$")
_CODE_SNIPPETS = (
    "def growth(prev, cur):\n    return (cur - prev) / prev * 100",
    "SELECT region, SUM(revenue) AS total\nFROM sales\nWHERE year = 2023\nGROUP BY region;",
    'for page in document.pages:\n    if page.status != "Success":\n        retry(page)',
    "curl -X POST https://api.example.com/v1/parse \\\n  -H 'x-ti-app-id: <app-id>' \\\n"
    "  --data-binary @report.pdf",
)
# fmt: on
_HEADER = "星河科技股份有限公司 2023年年度报告 Annual Report"
_FOOTER = "敬请参阅最后一页的重要声明 Please read the disclaimer on the last page"
_IMAGE_BASE = "https://example.com/xparse/images"
_PAGE_IMAGE_BASE = "https://example.com/xparse/pages"

# char_details: an OCR look-alike is the runner-up candidate, else a common character.
_LOOKALIKES = (
    "0O 1l 5S 8B ce ao mn uv ，, 。. 未末 己已 日曰 人入 大太 天夫 析折 场汤 务各 理埋 述迹 概槪"
)
_CONFUSABLES = {a: b for pair in _LOOKALIKES.split() for a, b in (pair, pair[::-1])}
_FALLBACK_CJK = (
    "的一是在不了有和这中为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子"
)
_FALLBACK_ASCII = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_CONFIDENCES = tuple((round(0.99 + k / 1000, 3), round(0.01 - k / 1000, 3)) for k in range(10))

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


@dataclass(slots=True)
class _Grid:
    """Cells as (row, col, row_span, col_span, text), 1-based, covering rows x cols exactly once."""

    rows: int
    cols: int
    cells: list[tuple[int, int, int, int, str]]


@dataclass(slots=True)
class _Block:
    """One planned element of a page, before it gets an id."""

    type: str
    text: str = ""
    depth: int | None = None
    grid: _Grid | None = None
    chain: bool = False  # a fragment of a cross-page table
    continuation: bool = False  # ... that continues the previous page's fragment
    image_size: tuple[int, int] | None = None
    image_url: str = ""
    box: Box = (0.0, 0.0, 0.0, 0.0)
    inline_object: tuple[int, int] | None = None  # text_range of an inline formula object


def _rng(seed: int, page: int, stream: str) -> random.Random:
    # A str seed is hashed with SHA-512: each (seed, page, stream) gets its own stable sequence.
    return random.Random(f"xparse-generate/{seed}/{page}/{stream}")


def _fill(rng: random.Random, template: str) -> str:
    return template.format(
        y=rng.randint(2015, 2026), q=rng.randint(1, 4), n=rng.randint(12, 980), d=rng.randint(1, 9)
    )


def _sentence(rng: random.Random) -> str:
    if rng.random() < _ZH_SHARE:
        return (
            rng.choice(_ZH_SUBJECTS)
            + _fill(rng, rng.choice(_ZH_TIMES))
            + rng.choice(_ZH_VERBS)
            + rng.choice(_ZH_OBJECTS)
            + _fill(rng, rng.choice(_ZH_TAILS))
        )
    return f"{rng.choice(_EN_SUBJECTS)} {rng.choice(_EN_VERBS)}{_fill(rng, rng.choice(_EN_TAILS))} "


def _paragraph(rng: random.Random, chars: int) -> str:
    parts: list[str] = []
    length = 0
    while length < chars:
        parts.append(_sentence(rng))
        length += len(parts[-1])
    return "".join(parts).rstrip()


def _title(rng: random.Random, page: int, depth: int) -> str:
    """Chapter n on page 8n-7, its section s on page 8n-8+s, subsection s.1 under that."""
    chapter, section = (page - 1) // 8 + 1, (page - 1) % 8 + 1
    number = (f"第{chapter}章", f"{chapter}.{section}", f"{chapter}.{section}.1")[depth]
    return f"{number} {rng.choice(_TITLE_TOPICS)}"


def _header_row(rng: random.Random, cols: int) -> list[str]:
    start = rng.randint(2015, 2021)
    return [rng.choice(("项目", "指标 Metric", "类别"))] + [
        f"{start + i}{'E' if start + i > 2023 else ''}" for i in range(cols - 1)
    ]


def _chain_header(seed: int, start_page: int) -> list[str]:
    """The header row shared by all fragments of the cross-page table starting on ``start_page``."""
    rng = _rng(seed, start_page, "chain")
    return _header_row(rng, rng.randint(5, 7))


def _cell_text(rng: random.Random, col: int, row_span: int, col_span: int) -> str:
    if col == 0:
        return rng.choice(_GROUP_LABELS if row_span > 1 else _ROW_LABELS)
    if col_span > 1:
        return rng.choice(("—", "不适用 N/A", "合计 Total", f"{rng.randint(1000, 99999):,}"))
    if rng.random() < 0.5:
        return f"{rng.randint(1, 999_999):,}"
    return f"{rng.uniform(-30, 300):.2f}%"


def _grid(rng: random.Random, header: list[str], body_rows: int) -> _Grid:
    """A grid under ``header``; its body always has a 2-row and a 2-column cell, at times a 2x2."""
    rows, cols = body_rows + 1, len(header)
    taken = [[False] * cols for _ in range(rows)]
    cells = [(1, c + 1, 1, 1, text) for c, text in enumerate(header)]
    for r in range(1, rows):
        for c in range(cols):
            if taken[r][c]:
                continue
            roll = rng.random()
            if (r, c) == (1, 0) or (c == 0 and roll < 0.25):
                span = (2, 1)
            elif (r, c) == (1, 1) or roll < 0.06:
                span = (1, 2)
            elif roll < 0.09:
                span = (2, 2)
            else:
                span = (1, 1)
            rs, cs = span
            if (
                r + rs > rows
                or c + cs > cols
                or any(taken[r + i][c + j] for i in range(rs) for j in range(cs))
            ):
                rs, cs = 1, 1
            for i in range(rs):
                for j in range(cs):
                    taken[r + i][c + j] = True
            cells.append((r + 1, c + 1, rs, cs, _cell_text(rng, c, rs, cs)))
    return _Grid(rows, cols, cells)


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _table_html(grid: _Grid) -> str:
    """The grid as engine-style HTML: ``<table><tr><td rowspan="2">..</td>...</table>``."""
    rows: list[list[str]] = [[] for _ in range(grid.rows)]
    for row, _col, row_span, col_span, text in grid.cells:
        attrs = (f' rowspan="{row_span}"' if row_span > 1 else "") + (
            f' colspan="{col_span}"' if col_span > 1 else ""
        )
        rows[row - 1].append(f"<td{attrs}>{_escape_html(text)}</td>")
    return "<table>" + "".join("<tr>" + "".join(tds) + "</tr>" for tds in rows) + "</table>"


def _table(grid: _Grid, chain: bool = False, continuation: bool = False) -> _Block:
    return _Block("Table", _table_html(grid), grid=grid, chain=chain, continuation=continuation)


def _height(block: _Block) -> float:
    """Unscaled height of a block on the page."""
    if block.grid is not None:
        return block.grid.rows * _ROW
    if block.image_size is not None:
        return block.image_size[1] * _IMAGE_SCALE / PAGE_HEIGHT
    if block.type == "CodeSnippet":
        return (block.text.count("\n") + 1) * _LINE + 0.01
    if block.type == "Formula":
        return 0.035
    if block.type == "Title":
        return 0.028 - 0.003 * (block.depth or 0)
    return -(-len(block.text) // _CPL) * _LINE + 0.004


def _width(block: _Block) -> tuple[float, float]:
    """Horizontal extent of a block on the page."""
    if block.image_size is not None:
        half = block.image_size[0] * _IMAGE_SCALE / PAGE_WIDTH / 2
        return 0.5 - half, 0.5 + half
    width = min(_RIGHT - _LEFT, 0.05 + 0.016 * len(block.text))
    if block.type == "Title":
        return _LEFT, _LEFT + width
    if block.type in ("TableCaption", "FigureCaption", "Formula"):
        return 0.5 - width / 2, 0.5 + width / 2
    if block.type == "ListItem":
        return _LEFT + 0.03, _RIGHT
    return _LEFT, _RIGHT


def _layout(blocks: list[_Block]) -> None:
    """Give each block a box: furniture at fixed places, the body stacked downwards to fit."""
    body = blocks[1:-2]
    heights = [_height(b) for b in body]
    total = sum(heights) + _GAP * (len(body) - 1)
    scale = min(1.0, (_BOTTOM - _TOP) / total)
    y = _TOP
    for block, height in zip(body, heights, strict=True):
        x0, x1 = _width(block)
        block.box = (x0, y, x1, y + height * scale)
        y += (height + _GAP) * scale
    blocks[0].box = (_LEFT, 0.025, 0.62, 0.043)
    blocks[-2].box = (_LEFT, 0.950, 0.60, 0.964)
    blocks[-1].box = (0.485, 0.968, 0.515, 0.982)


_INLINE_FORMULAS = (r"$GM=\frac{R-C}{R}$", r"$x^{2}+y^{2}=r^{2}$", r"$\sqrt{a^2+b^2}$",
                    r"$\sum_{i=1}^{n} x_i$", r"$\Delta P = P_1 - P_0$", r"$\ce{H2SO4}$")


def _add_formulas(seed: int, page: int, groups: list[list[_Block]]) -> None:
    """The ``formulas`` variant's additions, from their own random stream (so the rest of the
    page does not change): a display Formula, an inline ``$..$`` in one paragraph, and an
    inline formula object in another."""
    rng = _rng(seed, page, "formulas")
    paragraphs = [g[0] for g in groups if g[0].type == "NarrativeText"]
    plain, with_object = paragraphs[0], paragraphs[-1]
    plain.text += f"公式 {rng.choice(_INLINE_FORMULAS)} 成立。"
    formula = rng.choice(_INLINE_FORMULAS)
    start = len(with_object.text) + 3
    with_object.text += f"其中 {formula} 为比率。"
    with_object.inline_object = (start, start + len(formula))
    groups.insert(rng.randint(1, len(groups)), [_Block("Formula", rng.choice(_FORMULAS))])


def _plan_page(seed: int, page: int, images: bool, formulas: bool = False) -> list[_Block]:
    """The blocks of one page in reading order, laid out; a pure function of its arguments."""
    rng = _rng(seed, page, "plan")
    chain_step = (page - 1) % CHAIN_EVERY
    if 0 < chain_step < CHAIN_PAGES - 1:
        # A middle page of a chain: the table fills the page, nothing else is on it.
        header = _chain_header(seed, page - chain_step)
        grid = _grid(rng, header, rng.randint(*_CHAIN_FULL_ROWS))
        blocks = [
            _Block("Header", _HEADER),
            _table(grid, chain=True, continuation=True),
            _Block("Footer", _FOOTER),
            _Block("PageNumber", str(page)),
        ]
        _layout(blocks)
        return blocks
    groups: list[list[_Block]] = [
        [_Block("NarrativeText", _paragraph(rng, rng.randint(*_PARAGRAPH_CHARS)))]
        for _ in range(rng.randint(6, 12))
    ]
    extras: list[list[_Block]] = []
    if rng.random() < 0.4:
        bullet = rng.random() < 0.5
        items = range(1, rng.randint(2, 4) + 1)
        texts = [("• " if bullet else f"{i}. ") + _sentence(rng).rstrip() for i in items]
        extras.append([_Block("ListItem", text, depth=0) for text in texts])
    if rng.random() < 0.2:
        extras.append([_Block("Formula", rng.choice(_FORMULAS))])
    if rng.random() < 0.15:
        extras.append([_Block("CodeSnippet", rng.choice(_CODE_SNIPPETS))])
    if page % TABLE_EVERY == 0:
        header = _header_row(rng, rng.randint(4, 6))
        caption = f"表{page // TABLE_EVERY}：{rng.choice(_TITLE_TOPICS)}主要数据"
        extras.append(
            [_Block("TableCaption", caption), _table(_grid(rng, header, rng.randint(5, 9)))]
        )
    if page % IMAGE_EVERY == 0:
        size = (rng.randint(112, 160), rng.randint(64, 96))
        number = page // IMAGE_EVERY
        caption = f"图{number}：{rng.choice(_TITLE_TOPICS)}趋势 Figure {number}"
        url = f"{_IMAGE_BASE}/{seed}/page-{page}.png"
        extras.append(
            [_Block("Image", image_size=size, image_url=url), _Block("FigureCaption", caption)]
        )
    for extra in extras:
        groups.insert(rng.randint(1, len(groups)), extra)
    if formulas:
        _add_formulas(seed, page, groups)
    # A chapter starts every 8 pages; each other page starts a section.
    depth = 0 if (page - 1) % 8 == 0 else 1
    groups.insert(0, [_Block("Title", _title(rng, page, depth), depth=depth)])
    if rng.random() < 0.5:
        groups.insert(
            rng.randint(2, len(groups) - 1),
            [_Block("Title", _title(rng, page, depth + 1), depth=depth + 1)],
        )
    if chain_step == CHAIN_PAGES - 1 > 0:
        # The last page of a chain: the closing fragment first, then the page's own content.
        header = _chain_header(seed, page - chain_step)
        groups.insert(
            0, [_table(_grid(rng, header, rng.randint(8, 14)), chain=True, continuation=True)]
        )
    elif chain_step == 0:
        # The first page of a chain: the captioned opening fragment ends the page's body.
        header = _chain_header(seed, page)
        caption = f"跨页表{page // CHAIN_EVERY + 1}：分季度经营数据 Quarterly data"
        groups.append(
            [
                _Block("TableCaption", caption),
                _table(_grid(rng, header, rng.randint(8, 14)), chain=True),
            ]
        )
    blocks = [_Block("Header", _HEADER)]
    # The figure is planned either way, so that the rest of the page does not depend on ``images``.
    blocks += [
        block
        for group in groups
        for block in group
        if images or block.type not in ("Image", "FigureCaption")
    ]
    blocks += [_Block("Footer", _FOOTER), _Block("PageNumber", str(page))]
    _layout(blocks)
    return blocks


def _page_markdown(blocks: list[_Block]) -> str:
    """One page as engine-style markdown: furniture in comments, tables as HTML."""
    parts: list[str] = []
    previous = ""
    for block in blocks:
        if block.type in ("Header", "Footer", "PageNumber"):
            part = f"<!-- {block.text} -->"
        elif block.type == "Title":
            part = "#" * ((block.depth or 0) + 1) + " " + block.text
        elif block.type == "CodeSnippet":
            part = f"```\n{block.text}\n```"
        elif block.type == "Image":
            part = f"![]({block.image_url})"
        else:
            part = block.text
        if parts:
            parts.append("\n" if block.type == previous == "ListItem" else "\n\n")
        parts.append(part)
        previous = block.type
    return "".join(parts)


def _quad(box: Box) -> list[float]:
    """Four corners (TL, TR, BR, BL) of a box, clamped to [0, 1], 6 decimals."""
    x0, y0, x1, y1 = (round(min(1.0, max(0.0, v)), 6) for v in box)
    return [x0, y0, x1, y0, x1, y1, x0, y1]


def _char_details(text: str, box: Box, rng: random.Random) -> list[dict[str, Any]]:
    """One entry per character of ``text``, laid out in even lines across ``box``."""
    x0, y0, x1, y1 = box
    per_line = max(1, int((x1 - x0) * _CPL / (_RIGHT - _LEFT)))
    lines = -(-len(text) // per_line)
    per_line = -(-len(text) // lines)
    char_w, line_h = (x1 - x0) / per_line, (y1 - y0) / lines
    details = []
    for i, ch in enumerate(text):
        cx, cy = x0 + (i % per_line) * char_w, y0 + (i // per_line) * line_h
        best, runner_up = _CONFIDENCES[rng.randrange(10)]
        other = _CONFUSABLES.get(ch) or rng.choice(
            _FALLBACK_CJK if ch >= "\u2e80" else _FALLBACK_ASCII
        )
        details.append(
            {
                "index": i,
                "text": ch,
                "coordinates": _quad((cx, cy, cx + char_w, cy + line_h)),
                "recognition": {
                    "confidence": best,
                    "candidates": [
                        {"text": ch, "confidence": best},
                        {"text": other, "confidence": runner_up},
                    ],
                },
            }
        )
    return details


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, phase: int) -> bytes:
    """A valid RGB PNG with a diagonal gradient.

    The pixel data sits in stored (uncompressed) deflate blocks, so the bytes do not depend on the
    zlib build, and the size is predictable: 3 * width * height plus a few hundred bytes.
    """
    span = width + height
    ramp = bytes(
        v
        for t in range(span)
        for v in (255 * t // span, 255 - 255 * t // span, (phase + 5 * t) & 0xFF)
    )
    raw = b"".join(b"\x00" + ramp[3 * y : 3 * (y + width)] for y in range(height))
    blocks = [
        struct.pack("<BHH", start + 0xFFFF >= len(raw), len(chunk), len(chunk) ^ 0xFFFF) + chunk
        for start in range(0, len(raw), 0xFFFF)
        for chunk in [raw[start : start + 0xFFFF]]
    ]
    idat = b"\x78\x01" + b"".join(blocks) + struct.pack(">I", zlib.adler32(raw))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


class _ElementBuilder:
    """Turns planned pages into element dicts, in order, holding only what crosses pages:

    the next ids, the last fragment of a cross-page table, the title tree and the page records.
    """

    def __init__(
        self,
        seed: int,
        images: bool,
        char_details: bool,
        data_source: dict[str, Any],
        formulas: bool = False,
    ) -> None:
        self.seed = seed
        self.images = images
        self.formulas = formulas
        self.char_details = char_details
        self.data_source = data_source
        self.next_element = 1
        self.next_table = 1
        self.chain_tail = ""
        self.title_tree: list[dict[str, Any]] = []
        self.title_stack: list[dict[str, Any]] = []
        self.pages: list[dict[str, Any]] = []
        self.counts = {"elements": 0, "tables": 0, "images": 0}

    def page(self, page: int) -> Iterator[dict[str, Any]]:
        """Yield the elements of ``page``; pages must be asked for in order from 1."""
        blocks = _plan_page(self.seed, page, self.images, self.formulas)
        ids = [f"el_{self.next_element + i:06d}" for i in range(len(blocks))]
        self.next_element += len(blocks)
        rng = _rng(self.seed, page, "details")
        for i, (block, element_id) in enumerate(zip(blocks, ids, strict=True)):
            ref = None
            if block.type == "TableCaption":
                ref = ids[i + 1]
            elif block.type == "FigureCaption":
                ref = ids[i - 1]
            yield self._element(block, element_id, page, ref, rng)
        self.pages.append(
            {
                "page_number": page,
                "page_width": PAGE_WIDTH,
                "page_height": PAGE_HEIGHT,
                "page_image_url": f"{_PAGE_IMAGE_BASE}/{self.seed}/page-{page}.jpg",
                "element_ids": ids,
                "dpi": DPI,
                "angle": 0,
                "status": "Success",
            }
        )

    def _element(
        self, block: _Block, element_id: str, page: int, ref: str | None, rng: random.Random
    ) -> dict[str, Any]:
        metadata: dict[str, Any] = {}
        if block.depth is not None:
            metadata["category_depth"] = block.depth
        if ref is not None:
            metadata["ref_element_id"] = ref
        metadata["is_continuation"] = block.continuation
        if block.continuation:
            metadata["continuation_of"] = self.chain_tail
        if block.chain:
            self.chain_tail = element_id
        if block.image_size is not None:
            metadata["width"], metadata["height"] = block.image_size
        metadata["data_source"] = self.data_source
        if block.inline_object is not None:
            metadata["has_inline_objects"] = True
            metadata["inline_object_types"] = ["formula"]

        element: dict[str, Any] = {"element_id": element_id, "type": block.type}
        if block.grid is not None:
            element["sub_type"] = "bordered"
        element |= {
            "text": block.text,
            "page_number": page,
            "coordinates": _quad(block.box),
            "metadata": metadata,
        }
        if block.inline_object is not None:
            start, end = block.inline_object
            element["objects"] = [
                {
                    "object_id": f"obj_{element_id}",
                    "type": "formula",
                    "text": block.text[start:end],
                    "text_range": [start, end],
                    "coordinates": _quad(block.box),
                    "metadata": {"display_mode": "inline"},
                }
            ]
        if block.grid is not None:
            element["table_structure"] = self._table_structure(block.grid, block.box, rng)
            self.counts["tables"] += 1
        elif self.char_details and block.text:
            element["char_details"] = _char_details(block.text, block.box, rng)
        if block.image_size is not None:
            png = _png(*block.image_size, phase=rng.randrange(256))
            element["image_data"] = {
                "image_url": block.image_url,
                "mime_type": "image/png",
                "base64": base64.b64encode(png).decode("ascii"),
            }
            self.counts["images"] += 1
        if block.type == "Title":
            self._add_title(element_id, block.text, (block.depth or 0) + 1, page)
        self.counts["elements"] += 1
        return element

    def _table_structure(self, grid: _Grid, box: Box, rng: random.Random) -> dict[str, Any]:
        x0, y0, x1, y1 = box
        col_w, row_h = (x1 - x0) / grid.cols, (y1 - y0) / grid.rows
        prefix = f"tbl_{self.next_table:03d}"
        self.next_table += 1
        cells = []
        for row, col, row_span, col_span, text in grid.cells:
            cell_box = (
                x0 + (col - 1) * col_w,
                y0 + (row - 1) * row_h,
                x0 + (col - 1 + col_span) * col_w,
                y0 + (row - 1 + row_span) * row_h,
            )
            cell: dict[str, Any] = {
                "cell_id": f"{prefix}_r{row}_c{col}",
                "row": row,
                "col": col,
                "row_span": row_span,
                "col_span": col_span,
                "content_type": "text",
                "text": text,
                "coordinates": _quad(cell_box),
            }
            if self.char_details:
                cell["char_details"] = _char_details(text, cell_box, rng)
            cells.append(cell)
        return {"rows": grid.rows, "cols": grid.cols, "cells": cells}

    def _add_title(self, element_id: str, title: str, level: int, page: int) -> None:
        node = {
            "element_id": element_id,
            "title": title,
            "level": level,
            "page_number": page,
            "children": [],
        }
        while self.title_stack and self.title_stack[-1]["level"] >= level:
            self.title_stack.pop()
        (self.title_stack[-1]["children"] if self.title_stack else self.title_tree).append(node)
        self.title_stack.append(node)


def generate(
    path: str | os.PathLike[str],
    pages: int,
    images: bool = False,
    char_details: bool = False,
    seed: int = 0,
    formulas: bool = False,
) -> dict[str, int]:
    """Write an N-page xParse result to ``path``; the same arguments always give the same bytes.

    Memory stays flat: each page is planned twice (once for the markdown, once for the elements)
    instead of being kept. Returns ``bytes``, ``elements``, ``tables``, ``images`` and ``pages``.
    """
    if pages < 1:
        raise ValueError(f"pages must be at least 1, got {pages}")
    doc_rng = _rng(seed, 0, "document")
    filename = f"synthetic_report_{pages}p_seed{seed}.pdf"
    remote = f"/data/benchmarks/{filename}"
    data_source = {
        "record_locator": {"protocol": "file", "remote_file_path": remote},
        "url": f"file://{remote}",
    }
    head = {
        "schema_version": SCHEMA_VERSION,
        "file_id": f"doc_{doc_rng.getrandbits(24):06x}",
        "job_id": f"job_{doc_rng.getrandbits(24):06x}",
        "success_count": pages,
        "metadata": {
            "filename": filename,
            "filetype": "application/pdf",
            "page_count": pages,
            "data_source": data_source,
        },
    }
    builder = _ElementBuilder(seed, images, char_details, data_source, formulas)
    with open(path, "wb", buffering=1 << 20) as out:
        out.write(
            b'{"code":200,"message":"success","data":' + orjson.dumps(head)[:-1] + b',"markdown":"'
        )
        for page in range(1, pages + 1):
            text = ("\n\n" if page > 1 else "") + _page_markdown(
                _plan_page(seed, page, images, formulas)
            )
            # Escaping the pieces one by one escapes the whole string.
            out.write(orjson.dumps(text)[1:-1])
        out.write(b'","elements":[')
        separator = b""
        for page in range(1, pages + 1):
            for element in builder.page(page):
                out.write(separator + orjson.dumps(element))
                separator = b","
        summary = {"duration_ms": 400 * pages + doc_rng.randint(100, 999)}
        out.write(
            b'],"title_tree":'
            + orjson.dumps(builder.title_tree)
            + b',"pages":'
            + orjson.dumps(builder.pages)
            + b',"summary":'
            + orjson.dumps(summary)
            + b"}}"
        )
        size = out.tell()
    return {"bytes": size, **builder.counts, "pages": pages}


def main(argv: list[str] | None = None) -> int:
    """Command line: generate one file and print one summary line."""
    parser = argparse.ArgumentParser(
        description="Generate a deterministic synthetic xParse result (schema 1.3.0)."
    )
    parser.add_argument("--pages", type=int, required=True, help="number of pages")
    parser.add_argument(
        "--images", action="store_true", help="an Image with a real PNG on every 2nd page"
    )
    parser.add_argument(
        "--char-details", action="store_true", help="char_details on every text element and cell"
    )
    parser.add_argument(
        "--formulas",
        action="store_true",
        help="a display Formula, an inline $..$ and an inline formula object on every page",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("-o", "--output", required=True, help="output JSON file")
    args = parser.parse_args(argv)
    if args.pages < 1:
        parser.error("--pages must be at least 1")
    started = time.perf_counter()
    stats = generate(
        args.output,
        args.pages,
        images=args.images,
        char_details=args.char_details,
        seed=args.seed,
        formulas=args.formulas,
    )
    seconds = time.perf_counter() - started
    print(
        f"{args.output}: {stats['pages']} pages, {stats['elements']} elements, "
        f"{stats['tables']} tables, {stats['images']} images, {stats['bytes'] / 1e6:.1f} MB "
        f"in {seconds:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
