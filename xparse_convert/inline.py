"""Inline runs: the one place that decides what the inside of a paragraph or cell is.

Element text, cell text and captions become a sequence of ``Run``: text (with strong,
emphasis, subscript, superscript and link marks), line breaks, math and pictures.  Every
writer renders the same runs its own way, so emphasis, math and cell pictures mean the same
thing in DOCX, HTML, Markdown and XLSX.

Engine text (``parse_text``) is Markdown-flavoured: the engine writes ``**bold**`` and
``$x^2$``.  Only emphasis, strong and math are interpreted (markdown-it-py with the
``dollarmath`` plugin, pandoc's ``tex_math_dollars`` rule: ``$5 and $6`` is text, ``$x<y$``
is math).  Every other construct stays as its literal source text: links, code spans, raw
HTML, entities and backslash escapes (``\\*`` shows as ``\\*`` and opens nothing).  A ``*``
with a digit on both sides never opens or closes emphasis (``2*3*4`` stays as written).
Text without any of ``* _ $ \\ ` `` never meets the parser.  Inline ``objects`` of type
``formula`` become math where their ``text_range`` points (see ``_locate``).

Cell markup (``parse_html``): legacy ``cells[].text`` and HTML table cells carry inline HTML
(``<br>``, ``<img>``, ``<sub>``, ``<sup>``, ``<b>``, entities).  It is read as runs; no tag is
ever kept as text, and nothing of the markup is copied to any output.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from .images import ImageRef
from .text import strip_math_delimiters

# Marks of a text run (bit flags).
STRONG = 1
EMPHASIS = 2
SUB = 4
SUP = 8

TEXT = "text"
BREAK = "break"
MATH = "math"
PICTURE = "picture"


class Run(NamedTuple):
    """One piece of inline content.

    ``text`` is the text (``TEXT``), the LaTeX without delimiters (``MATH``) or ``""``.
    ``source`` is how a ``MATH`` run was written (``$x$``, ``$$x$$``), for formats that carry
    LaTeX.  ``href`` is the unchecked link target of a text run (writers pass it through the
    URL policy).  ``image`` is the picture of a ``PICTURE`` run.
    """

    kind: str
    text: str = ""
    marks: int = 0
    display: bool = False
    source: str = ""
    href: str | None = None
    image: ImageRef | None = None


BREAK_RUN = Run(BREAK)
NEWLINES = re.compile(r"\r\n|\r|\n")  # every line break the engine writes


def text_runs(text: str, marks: int = 0, href: str | None = None) -> list[Run]:
    """Plain text as runs: each line break (``\\n``, ``\\r\\n``, ``\\r``) a ``BREAK``."""
    if "\n" not in text and "\r" not in text:
        return [Run(TEXT, text, marks, href=href)] if text else []
    out: list[Run] = []
    for i, line in enumerate(NEWLINES.split(text)):
        if i:
            out.append(BREAK_RUN)
        if line:
            out.append(Run(TEXT, line, marks, href=href))
    return out


# -- engine text -----------------------------------------------------------------------------
_parser: Any = None


def _digit_star(state: Any, silent: bool) -> bool:
    """An inline rule before emphasis: a run of ``*`` between two digits is plain text."""
    pos = state.pos
    src = state.src
    if src[pos] != "*" or pos == 0 or not src[pos - 1].isdigit():
        return False
    end = pos
    while end < state.posMax and src[end] == "*":
        end += 1
    if end >= state.posMax or not src[end].isdigit():
        return False
    if not silent:
        token = state.push("text", "", 0)
        token.content = src[pos:end]
    state.pos = end
    return True


def _code_span(state: Any, silent: bool) -> bool:
    """A code span (CommonMark's backtick rule) kept as its literal source: nothing inside it
    is interpreted, and its backticks stay."""
    pos = state.pos
    src = state.src
    if src[pos] != "`":
        return False
    end = pos
    while end < state.posMax and src[end] == "`":
        end += 1
    ticks = src[pos:end]
    close = end
    while True:
        close = src.find(ticks, close, state.posMax)
        if close < 0:  # no closing run: the backticks are text
            stop = end
            break
        after = close + len(ticks)
        if after >= state.posMax or src[after] != "`":
            stop = after
            break
        while after < state.posMax and src[after] == "`":
            after += 1
        close = after
    if not silent:
        token = state.push("text", "", 0)
        token.content = src[pos:stop]
    state.pos = stop
    return True


def _md() -> Any:
    global _parser
    if _parser is None:
        from markdown_it import MarkdownIt
        from mdit_py_plugins.dollarmath import dollarmath_plugin

        md = MarkdownIt("zero").enable(["emphasis", "escape"])
        md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
        md.inline.ruler.before("emphasis", "digit_star", _digit_star)
        md.inline.ruler.before("emphasis", "code_span", _code_span)
        md.core.ruler.disable("text_join")  # keep escapes apart: their source is shown
        _parser = md
    return _parser


def _markdown_runs(text: str, base: int = 0) -> list[Run]:
    tokens = _md().parseInline(text)[0].children or []
    out: list[Run] = []
    marks = base
    for token in tokens:
        kind = token.type
        if kind == "text":
            out.extend(text_runs(token.content, marks))
        elif kind == "text_special":  # a backslash escape: shown as written
            out.extend(text_runs(token.markup or token.content, marks))
        elif kind == "strong_open":
            marks |= STRONG
        elif kind == "strong_close":
            marks &= ~STRONG | base
        elif kind == "em_open":
            marks |= EMPHASIS
        elif kind == "em_close":
            marks &= ~EMPHASIS | base
        elif kind in ("math_inline", "math_inline_double"):
            delim = token.markup or "$"
            out.append(Run(MATH, token.content.strip(), marks, display=kind.endswith("double"),
                           source=f"{delim}{token.content}{delim}"))
        elif kind == "softbreak" or kind == "hardbreak":
            out.append(BREAK_RUN)
        else:  # nothing else is enabled; keep whatever it is as text
            out.extend(text_runs(token.content, marks))
    return out


def may_have_markup(text: str) -> bool:
    """False when ``text`` has nothing the inline rules could interpret (the fast path;
    ``in`` tests beat a regex on the short texts of most elements)."""
    return "*" in text or "_" in text or "$" in text or "\\" in text or "`" in text


def may_have_cell_markup(text: str) -> bool:
    """``may_have_markup``, or inline HTML (tags, entities) as legacy cells carry it."""
    return may_have_markup(text) or "<" in text or "&" in text


def _interpreted(text: str, marks: int = 0) -> list[Run]:
    if not may_have_markup(text):
        return text_runs(text, marks)
    return _markdown_runs(text, marks)


def _locate(text: str, obj: dict[str, Any], after: int) -> tuple[int, int] | None:
    """Where a formula object sits in ``text``: ``text_range`` when ``text[start:end]`` is the
    object's text; else ``end + 1`` (an off-by-one seen in real output); else a search near
    ``start``.  None when it cannot be found."""
    wanted = obj.get("text")
    span = obj.get("text_range")
    if not isinstance(wanted, str) or not wanted:
        return None
    start = span[0] if isinstance(span, list) and len(span) == 2 and all(
        type(v) is int for v in span) else None
    if start is not None:
        end = span[1]
        if start >= after and text[start:end] == wanted:
            return start, end
        if start >= after and text[start:end + 1] == wanted:
            return start, end + 1
        found = text.find(wanted, max(after, start - 64), start + len(wanted) + 64)
        if found >= 0:
            return found, found + len(wanted)
        return None
    found = text.find(wanted, after)
    return (found, found + len(wanted)) if found >= 0 else None


def formula_objects(objects: Iterable[Any]) -> list[dict[str, Any]]:
    """The inline objects of type ``formula``, in text order as given."""
    return [o for o in objects if isinstance(o, dict) and o.get("type") == "formula"]


def parse_text(text: str, objects: Sequence[Any] = (), *, marks: int = 0,
               warn: Callable[[str], None] | None = None) -> list[Run]:
    """Runs of engine text, with ``objects`` of type ``formula`` as math where they are.
    ``warn`` hears of an object that could not be placed (its text stays as it is)."""
    formulas = formula_objects(objects) if objects else []
    if not formulas:
        return _interpreted(text, marks)
    out: list[Run] = []
    pos = 0
    for obj in formulas:
        where = _locate(text, obj, pos)
        if where is None:
            if warn is not None:
                warn(f"inline formula {str(obj.get('object_id', ''))[:40]!r} not found at its "
                     "text_range; its text is kept as written")
            continue
        start, end = where
        out.extend(_interpreted(text[pos:start], marks))
        source = text[start:end]
        meta = obj.get("metadata")
        display = isinstance(meta, dict) and meta.get("display_mode") == "display"
        latex = strip_math_delimiters(source)
        if latex:
            out.append(Run(MATH, latex, marks, display=display, source=source))
        pos = end
    out.extend(_interpreted(text[pos:], marks))
    return out


def math_runs(text: str) -> list[Run]:
    """The whole of ``text`` as one formula (a cell whose ``content_type`` is ``formula``)."""
    latex = strip_math_delimiters(text)
    return [Run(MATH, latex, source=text)] if latex else []


# -- cell markup -----------------------------------------------------------------------------
_HTML_MARKUP = re.compile(
    r"<\s*/?\s*(?:br|img|sub|sup|b|strong|i|em|u|s|strike|del|ins|span|p|div|a|font|small|big|"
    r"mark|code|li|ul|ol)\b[^>]*>|&(?:#\d{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z]{2,8});",
    re.IGNORECASE)
_TAG_MARKS = {"b": STRONG, "strong": STRONG, "i": EMPHASIS, "em": EMPHASIS, "sub": SUB,
              "sup": SUP}
_BLOCK_TAGS = frozenset({"p", "div", "li", "tr", "ul", "ol", "table"})
_DROPPED_TAGS = frozenset({"script", "style", "head", "title", "template", "noscript"})
_HTML_WS = re.compile(r"[ \t\r\n\f\v]+")
_TAG = re.compile(r"<[^<>]*>")


def has_html_markup(text: str) -> bool:
    """True when ``text`` holds inline HTML tags or entities (legacy cell text)."""
    return ("<" in text or "&" in text) and _HTML_MARKUP.search(text) is not None


def picture_from_src(src: str | None) -> ImageRef | None:
    """A picture from an ``<img src>``: base64 of a ``data:`` URI, else the URL as given."""
    if not src:
        return None
    src = src.strip()
    if src[:5].lower() == "data:":
        return ImageRef(None, None, src)
    return ImageRef(src, None, None)


def parse_html(markup: str) -> list[Run]:
    """Runs of an HTML fragment (a cell's inner markup)."""
    import lxml.html
    from lxml import etree

    try:
        root = lxml.html.fragment_fromstring(markup, create_parent="div")
        runs = html_node_runs(root)
    except (etree.LxmlError, ValueError):
        runs = []
    if not runs and _TAG.sub("", markup).strip():
        # the parser gave up (nesting deeper than libxml2 allows): keep the text, no tags
        return text_runs(html.unescape(_TAG.sub("", markup)).strip())
    return runs


def html_node_runs(node: Any) -> list[Run]:
    """Runs of the content of an lxml HTML element (not the element's own tag).  Iterative,
    so hostile nesting cannot exhaust the stack."""
    out: list[Run] = []
    # (node, marks, href) to enter, or a str: tail text to add with the given marks
    stack: list[tuple[Any, int, str | None, bool]] = [(node, 0, None, True)]
    while stack:
        item, marks, href, entering = stack.pop()
        if not entering:  # the tail of an element, after its content
            if isinstance(item, str):
                _html_text(out, item, marks, href)
            else:
                tag = item.tag.lower() if isinstance(item.tag, str) else ""
                if tag in _BLOCK_TAGS and out and out[-1].kind != BREAK:
                    _add_break(out)
            continue
        tag = item.tag.lower() if isinstance(item.tag, str) else ""
        if item is not node:
            if tag == "br":
                _add_break(out)
                continue
            if tag == "img":
                ref = picture_from_src(item.get("src"))
                if ref is not None:
                    out.append(Run(PICTURE, item.get("alt") or "", image=ref))
                continue
            if tag in _DROPPED_TAGS or not tag:
                continue
            marks |= _TAG_MARKS.get(tag, 0)
            if tag == "a" and item.get("href"):
                href = item.get("href")
        stack.append((item, marks, href, False))
        for child in reversed(item):
            if child.tail:
                stack.append((child.tail, marks, href, False))
            stack.append((child, marks, href, True))
        if item.text and tag not in _DROPPED_TAGS:
            _html_text(out, item.text, marks, href)
    while out and out[-1].kind == BREAK:
        out.pop()
    while out and out[0].kind == BREAK:
        out.pop(0)
    return merge(out)


def _add_break(out: list[Run]) -> None:
    """A line break; the spaces before it go (a line of a cell is shown stripped)."""
    if out and out[-1].kind == TEXT:
        text = out[-1].text.rstrip()
        if text:
            out[-1] = out[-1]._replace(text=text)
        else:
            out.pop()
    out.append(BREAK_RUN)


def _html_text(out: list[Run], text: str, marks: int, href: str | None) -> None:
    text = _HTML_WS.sub(" ", text)
    if not text.strip() and (not out or out[-1].kind == BREAK):
        return  # whitespace between block tags
    if not out or out[-1].kind == BREAK:
        text = text.lstrip()
    if href is None and may_have_markup(text):
        out.extend(_markdown_runs(text, marks))
    elif text:
        out.append(Run(TEXT, text, marks, href=href))


# -- views -----------------------------------------------------------------------------------
def merge(runs: list[Run]) -> list[Run]:
    """Adjacent text runs with the same marks and link joined."""
    out: list[Run] = []
    texts: list[str] = []  # the texts of ``out[-1]``, joined once (a long chain is linear)
    for run in runs:
        if out and run.kind == TEXT and out[-1].kind == TEXT and out[-1].marks == run.marks \
                and out[-1].href == run.href:
            texts.append(run.text)
        elif run.kind != TEXT or run.text:
            if len(texts) > 1:
                out[-1] = out[-1]._replace(text="".join(texts))
            texts = [run.text]
            out.append(run)
    if len(texts) > 1:
        out[-1] = out[-1]._replace(text="".join(texts))
    return out


def strip_runs(runs: list[Run]) -> list[Run]:
    """Runs without leading and trailing whitespace and breaks (what a paragraph shows)."""
    start, end = 0, len(runs)
    while start < end and (runs[start].kind == BREAK or (
            runs[start].kind == TEXT and not runs[start].text.strip())):
        start += 1
    while end > start and (runs[end - 1].kind == BREAK or (
            runs[end - 1].kind == TEXT and not runs[end - 1].text.strip())):
        end -= 1
    out = runs[start:end] if start or end < len(runs) else runs
    if out and out[0].kind == TEXT and out[0].text[:1].isspace():
        out = [out[0]._replace(text=out[0].text.lstrip()), *out[1:]]
    if out and out[-1].kind == TEXT and out[-1].text[-1:].isspace():
        out = [*out[:-1], out[-1]._replace(text=out[-1].text.rstrip())]
    return out


def fold_runs(runs: list[Run]) -> list[Run]:
    """Runs on one line: breaks become spaces and runs of whitespace one space (headings,
    list items, captions)."""
    joined = merge([Run(TEXT, " ") if r.kind == BREAK else r for r in runs])
    out: list[Run] = []
    for run in joined:
        if run.kind == TEXT:
            text = " ".join(run.text.split())
            if run.text[:1].isspace() and not (out and out[-1].kind == TEXT
                                               and out[-1].text.endswith(" ")):
                text = " " + text
            if run.text[-1:].isspace() and text.strip():
                text += " "
            if not text:
                continue
            run = run._replace(text=text)
        out.append(run)
    return strip_runs(out)


def without_prefix(runs: list[Run], prefix: str) -> list[Run]:
    """``runs`` without a leading ``prefix`` (a list marker) and the spaces after it."""
    if prefix and runs and runs[0].kind == TEXT and runs[0].text.startswith(prefix):
        rest = runs[0].text[len(prefix):].lstrip()
        return ([runs[0]._replace(text=rest)] if rest else []) + runs[1:]
    return runs


def split_lines(runs: list[Run]) -> list[list[Run]]:
    """The runs of each line (a cell's paragraphs); at least one, maybe empty, line."""
    lines: list[list[Run]] = [[]]
    for run in runs:
        if run.kind == BREAK:
            lines.append([])
        else:
            lines[-1].append(run)
    return lines


def plain_text(runs: Iterable[Run], picture: str = "", *, linear_math: bool = False) -> str:
    """The text a reader sees: math as written (``linear_math``: its LaTeX without the
    dollars, as a table of contents shows it), breaks as newlines, pictures as
    ``picture``."""
    parts: list[str] = []
    for run in runs:
        if run.kind == TEXT:
            parts.append(run.text)
        elif run.kind == BREAK:
            parts.append("\n")
        elif run.kind == MATH:
            parts.append(run.text if linear_math else run.source or run.text)
        elif run.kind == PICTURE and picture:
            parts.append(picture)
    return "".join(parts)


def is_plain(runs: Sequence[Run]) -> bool:
    """True when the runs are unmarked text and breaks only."""
    return all(r.kind == BREAK or (r.kind == TEXT and not r.marks and r.href is None)
               for r in runs)


def pictures(runs: Iterable[Run]) -> list[ImageRef]:
    return [r.image for r in runs if r.kind == PICTURE and r.image is not None]
