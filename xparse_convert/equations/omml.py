"""MathML -> OMML (Office Math, what Word edits as an equation), over the closed set of elements
latex2mathml writes.

MathML lists a big operator, its limits and its operand side by side; OMML nests them.  So a
sequence is read with a few stated rules:

* a big operator (``∑ ∫ ∏ ⋃ ...``, with or without scripts) is ``m:nary``; its operand is
  what follows up to the next relation, ``+``/``-``, comma or semicolon at the same level;
* a function name (a multi-letter identifier or operator: ``sin``, ``log``, ``lim``,
  ``\\operatorname{..}``) is ``m:func``; its argument is the next item (with a parenthesised
  group that follows it), and ``lim``-like names put their subscript under them (``m:limLow``);
* an opening fence, a table (or a bar-less fraction) and the matching closing fence are one
  stretchy ``m:d`` (``pmatrix``, ``\\binom``); ``\\left..\\right`` always is;
* scripts on an empty base before an item are prescripts (``m:sPre``: ``{}^{14}_{6}C``).

Everything else maps one to one: ``mfrac`` -> ``m:f``, ``msqrt``/``mroot`` -> ``m:rad`` (with an
``m:deg``, empty and hidden for a square root: LibreOffice draws a broken box without it),
scripts -> ``m:sSub``/``m:sSup``/``m:sSubSup``, accents -> ``m:acc``, over/underlines ->
``m:bar``, braces -> ``m:groupChr``, other limits -> ``m:limLow``/``m:limUpp``, tables ->
``m:m``, ``mtext`` -> a normal-text run (``m:nor``), upright identifiers -> ``m:sty p``.  An
element outside that set raises ``FormulaError``; so does any ``\\command`` left in a run.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from lxml import etree

from .latex import FormulaError
from .mathml import CACHE_SIZE, MAX_TREE_DEPTH, shared_tree

M_NS = "http://schemas.openxmlformats.org/officeDocument/2006/math"
NSMAP = {"m": M_NS}
XML_SPACE = "{http://www.w3.org/XML/1998/namespace}space"

NARY = frozenset("∑∏∐∫∬∭∮∯∰∱∲∳⋃⋂⋁⋀⨀⨁⨂⨄⨆⨅⨉⨌")
STOPS = frozenset("=<>≤≥≦≧⩽⩾≠≈≡≢∼≃≅≐∝≪≫→←↔⇒⇐⇔⟶⟹⟺↦∈∉∋⊂⊃⊆⊇⊊⊋+−-±∓,;")
LIMIT_NAMES = frozenset({"lim", "max", "min", "sup", "inf", "limsup", "liminf", "argmax",
                         "argmin", "det", "gcd", "Pr", "plim", "injlim", "projlim"})
BRACKETS = frozenset("([{")
CLOSERS = frozenset(")]}")
BARS_PAIRED = frozenset("|‖")
# Operators that cannot start a box in LibreOffice's reading of OMML (its StarMath parser wants
# a left operand); written as literal runs there (``m:lit``), which Word shows the same.
LEADING_LITERAL = STOPS - frozenset("+−-±∓") | frozenset("×·÷∗∘⋅/")
ENDING_LITERAL = STOPS | frozenset("×·÷∗∘⋅/")
OPEN_FENCES = {"(": ")", "[": "]", "{": "}", "|": "|", "‖": "‖", "⟨": "⟩", "⌊": "⌋", "⌈": "⌉"}
# over-script character -> the combining character Word's m:acc takes
ACCENTS = {
    "^": "\u0302", "ˆ": "\u0302", "\u0302": "\u0302", "¯": "\u0305", "\u0305": "\u0305",
    "→": "\u20d7", "⃗": "\u20d7", "←": "\u20d6", "↔": "\u20e1", "˙": "\u0307", "\u0307": "\u0307",
    "¨": "\u0308", "\u0308": "\u0308", "⃛": "\u20db", "⃜": "\u20dc", "~": "\u0303",
    "˜": "\u0303", "\u0303": "\u0303", "ˇ": "\u030c", "˘": "\u0306", "´": "\u0301",
    "`": "\u0300", "˚": "\u030a",
}
BARS = frozenset("―‾_\u0332")
GROUP_CHARS = frozenset("⏞⏟⏜⏝⎴⎵")
INVISIBLE = re.compile("[\u2061-\u2064]")
VARIANTS = {  # mathvariant -> (m:scr, m:sty)
    "normal": (None, "p"), "bold": (None, "b"), "italic": (None, "i"),
    "bold-italic": (None, "bi"), "double-struck": ("double-struck", "p"),
    "script": ("script", None), "bold-script": ("script", "b"), "fraktur": ("fraktur", None),
    "bold-fraktur": ("fraktur", "b"), "sans-serif": ("sans-serif", "p"),
    "bold-sans-serif": ("sans-serif", "b"), "sans-serif-italic": ("sans-serif", "i"),
    "monospace": ("monospace", "p"),
}
SPACES = [(1.5, "\u2003\u2003"), (0.9, "\u2003"), (0.25, "\u2005"), (0.1, "\u2009")]
_COMMAND = re.compile(r"\\[A-Za-z]")
_PAIRABLE = frozenset({"mo", "mi", "msub", "msup", "msubsup"})
_TRANSPARENT = frozenset({"mrow", "mstyle", "mpadded", "math", "semantics"})


def m(tag: str) -> str:
    return f"{{{M_NS}}}{tag}"


def _el(tag: str, parent: etree._Element, val: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, m(tag))
    if val is not None:
        element.set(m("val"), val)
    return element


def _text(node: etree._Element) -> str:
    return INVISIBLE.sub("", "".join(node.itertext()))


def _unwrap(node: etree._Element) -> etree._Element:
    """The single child of single-child groups (a script's base is often ``<mrow><mo>``)."""
    while node.tag in ("mrow", "mstyle", "mpadded") and len(node) == 1 and \
            not (node.text or "").strip():
        node = node[0]
    return node


def _is_empty(node: etree._Element) -> bool:
    return node.tag in ("mrow", "mi", "mstyle") and len(node) == 0 and not (node.text or
                                                                             "").strip()


def _fence(node: etree._Element) -> tuple[str, str, int] | None:
    """(opening, closing, items after the content) of a ``\\left..\\right`` group (or of
    ``cases``, which has no closing fence), else None."""
    if node.tag != "mrow" or len(node) < 2:
        return None
    first, last = node[0], node[-1]
    if first.tag != "mo" or first.get("fence") != "true" or first.get("form") != "prefix":
        return None
    if last.tag == "mo" and last.get("form") == "postfix":
        return _text(first), _text(last), 1
    return _text(first), "", 0


def _fenced_table(items: list[etree._Element], i: int) -> bool:
    """True when items i..i+2 are an opening fence, a table (or a bar-less fraction) and the
    matching closing fence: ``pmatrix``, ``\\binom``."""
    if i + 2 >= len(items) or items[i].tag != "mo" or _text(items[i]) not in OPEN_FENCES:
        return False
    inner, close = items[i + 1], items[i + 2]
    return (inner.tag == "mtable" or inner.tag == "mfrac" and
            inner.get("linethickness") in ("0", "0pt", "0em")) and close.tag == "mo" and \
        _text(close) == OPEN_FENCES[_text(items[i])]


def _scripts(node: etree._Element
             ) -> tuple[etree._Element, etree._Element | None, etree._Element | None, str]:
    """(base, below/sub, above/sup, "sub" | "under" | "") of a scripted node."""
    tag = node.tag
    if tag in ("msub", "msup", "msubsup", "munder", "mover", "munderover"):
        children = list(node)
        need = 3 if tag in ("msubsup", "munderover") else 2
        if len(children) != need:
            raise FormulaError(f"<{tag}> with {len(children)} children")
        place = "sub" if tag.startswith("ms") else "under"
        if tag in ("msub", "munder"):
            return children[0], children[1], None, place
        if tag in ("msup", "mover"):
            return children[0], None, children[1], place
        return children[0], children[1], children[2], place
    return node, None, None, ""


def _is_open_paren(node: etree._Element) -> bool:
    return node.tag == "mo" and _text(node) == "("


def _function_name(node: etree._Element) -> str | None:
    core = _unwrap(node)
    if core.tag in ("mi", "mo"):
        name = _text(core).strip()
        if len(name) >= 2 and name.isascii() and name.isalpha():
            return name
    return None


def _literal_ends(box: etree._Element) -> None:
    """An operator ending a box is written literally (LibreOffice wants a right operand after
    ``+`` in ``Fe^{3+}``); Word shows it the same."""
    if len(box) and box[-1].tag == m("r"):
        t = box[-1].find(m("t"))
        if t is not None and (t.text or "").strip() in ENDING_LITERAL and \
                box[-1].find(f"{m('rPr')}/{m('lit')}") is None:
            props = box[-1].find(m("rPr"))
            if props is None:
                props = etree.Element(m("rPr"))
                box[-1].insert(0, props)
            props.insert(0, etree.Element(m("lit")))


def _bracket(node: etree._Element) -> str:
    """The bracket a plain (not ``\\left``) operator is, or "" (for a scripted node: of its
    base)."""
    core = _unwrap(_scripts(node)[0])
    if core.tag in ("mo", "mi") and core.get("form") is None:
        text = _text(core)
        if text in BARS_PAIRED or core.tag == "mo" and (text in BRACKETS or text in CLOSERS):
            return text
    return ""


class _Group:
    """A bracket pair of a sequence and what it holds, with the script its closing bracket
    carried (a view: the MathML tree itself is never changed)."""

    tag = "#group"

    def __init__(self, opening: str, inner: list[Any], closing: str,
                 scripted: etree._Element | None = None) -> None:
        self.opening, self.inner, self.closing, self.scripted = opening, inner, closing, scripted

    def get(self, key: str, default: str | None = None) -> str | None:
        return default


def _pair_brackets(items: list[Any]) -> list[Any]:
    """Brackets of one sequence paired into groups (``m:d``), the way Word builds them: a
    script on a closing bracket goes on the group (``(1+r)^n``), and an operand search never
    stops inside one.  ``|`` and ``‖`` close the group they opened, else open one.  A bracket
    without its partner still opens or closes a group with an empty other side (LibreOffice
    cannot read an unpaired one)."""
    if not any(_bracket(item) for item in items):
        return items
    out: list[Any] = []
    opened: list[int] = []
    for item in items:
        text = _bracket(item) if item.tag in _PAIRABLE else ""
        role = ""
        if text in BARS_PAIRED:
            if opened and _text(out[opened[-1]]) == text:
                role = "close"
            elif item.tag in ("mo", "mi"):
                role = "open"
        elif text in BRACKETS and item.tag == "mo":
            role = "open"
        elif text in CLOSERS:
            role = "close"
        if role == "open":
            opened.append(len(out))
            out.append(item)
        elif role == "close":
            start = opened.pop() if opened else -1
            opening = _text(out[start]) if start >= 0 else ""
            inner = out[start + 1:]
            del out[max(start, 0):]
            # (..)^n: the script of the closing bracket goes on the group
            out.append(_Group(opening, inner, text,
                              None if item.tag in ("mo", "mi") else item))
        else:
            out.append(item)
    while opened:
        start = opened.pop()
        group = _Group(_text(out[start]), out[start + 1:], "")
        del out[start:]
        out.append(group)
    return out


class _Converter:
    # -- sequences ---------------------------------------------------------------------
    def flatten(self, nodes: list[etree._Element], depth: int) -> list[etree._Element]:
        """The items of a sequence: plain groups are opened (OMML needs no grouping)."""
        out: list[etree._Element] = []
        for node in nodes:
            if node.tag in _TRANSPARENT and _fence(node) is None:
                if depth > MAX_TREE_DEPTH:
                    raise FormulaError("formula nested too deeply")
                out += self.flatten([c for c in node if c.tag != "annotation"], depth + 1)
            elif node.tag == "mo" and len(node) and _function_name(node) is None:
                out += self.flatten(list(node), depth + 1)  # \mathbin{..}, \mathrel{..}
            else:
                out.append(node)
        return out

    def sequence(self, nodes: list[etree._Element], parent: etree._Element, depth: int) -> None:
        if depth > MAX_TREE_DEPTH:
            raise FormulaError("formula nested too deeply")
        items = _pair_brackets(self.flatten(nodes, depth))
        i = 0
        while i < len(items):
            item = items[i]
            base = _unwrap(_scripts(item)[0])
            if base.tag == "mo" and _text(base).strip() in NARY:
                end = i + 1
                while end < len(items) and not self.is_stop(items[end]):
                    end += 1
                self.nary(item, items[i + 1:end], parent, depth)
                i = end
                continue
            if _function_name(base) is not None:
                end = self.argument_end(items, i + 1)
                if end > i + 1:
                    func = _el("func", parent)
                    self.function_name(item, _el("fName", func), depth)
                    self.box("e", func, items[i + 1:end], depth)
                else:
                    self.function_name(item, parent, depth)
                i = end
                continue
            if _fenced_table(items, i):
                self.delimited(_text(item), [items[i + 1]], _text(items[i + 2]), parent,
                               depth)
                i += 3
                continue
            if item.tag in ("msub", "msup", "msubsup") and _is_empty(item[0]) and \
                    i + 1 < len(items):
                self.prescripts(item, items[i + 1], parent, depth)
                i += 2
                continue
            self.node(item, parent, depth)
            i += 1

    @staticmethod
    def is_stop(node: etree._Element) -> bool:
        return node.tag == "mo" and _text(node).strip() in STOPS

    def argument_end(self, items: list[etree._Element], start: int) -> int:
        """End of a function's argument: the next item (function names before it nest), and
        a parenthesised group after it; ``start`` when there is none."""
        k = start
        while k < len(items) and _function_name(_unwrap(_scripts(items[k])[0])) is not None:
            k += 1  # \sin \cos x: the inner function is the outer one's argument
        if k >= len(items) or self.is_stop(items[k]):
            return k
        if _fenced_table(items, k):
            return k + 3
        if not _is_open_paren(items[k]):
            k += 1
        if k < len(items) and _is_open_paren(items[k]):
            level = 0
            for j in range(k, len(items)):
                if _is_open_paren(items[j]):
                    level += 1
                elif items[j].tag == "mo" and _text(items[j]) == ")":
                    level -= 1
                    if level == 0:
                        return j + 1
            return max(k, start + 1)
        return k

    # -- structures --------------------------------------------------------------------
    def box(self, tag: str, parent: etree._Element, nodes: list[etree._Element] | None,
            depth: int) -> etree._Element:
        element = _el(tag, parent)
        if nodes:
            self.sequence(nodes, element, depth + 1)
            _literal_ends(element)
        return element

    def nary(self, op: etree._Element, body: list[etree._Element], parent: etree._Element,
             depth: int) -> None:
        base, below, above, place = _scripts(op)
        nary = _el("nary", parent)
        props = _el("naryPr", nary)
        _el("chr", props, _text(_unwrap(base)).strip())
        _el("limLoc", props, "undOvr" if place == "under" or not place else "subSup")
        if below is None:
            _el("subHide", props, "1")
        if above is None:
            _el("supHide", props, "1")
        self.box("sub", nary, [below] if below is not None else None, depth)
        self.box("sup", nary, [above] if above is not None else None, depth)
        self.box("e", nary, body, depth)

    def function_name(self, node: etree._Element, parent: etree._Element, depth: int) -> None:
        base, below, above, place = _scripts(node)
        name = _function_name(base) or ""
        if name in LIMIT_NAMES and (below is None) != (above is None):
            limit = _el("limLow" if below is not None else "limUpp", parent)
            self.run(name, _el("e", limit), sty="p")
            self.box("lim", limit, [below if below is not None else above], depth)
            return
        if not place:
            self.run(name, parent, sty="p")
            return
        tag = {(True, False): "sSub", (False, True): "sSup", (True, True): "sSubSup"}[
            (below is not None, above is not None)]
        script = _el(tag, parent)
        self.run(name, _el("e", script), sty="p")
        if below is not None:
            self.box("sub", script, [below], depth)
        if above is not None:
            self.box("sup", script, [above], depth)

    def delimited(self, begin: str, inner: list[etree._Element], end: str,
                  parent: etree._Element, depth: int) -> None:
        d = _el("d", parent)
        props = _el("dPr", d)
        _el("begChr", props, begin)
        # \middle| separates the parts of one delimiter group
        parts: list[list[etree._Element]] = [[]]
        separator = None
        for node in inner:
            if node.tag == "mo" and node.get("fence") == "true" and node.get("form") is None:
                separator = _text(node)
                parts.append([])
            else:
                parts[-1].append(node)
        if separator is not None:
            _el("sepChr", props, separator)
        _el("endChr", props, end)
        for part in parts:
            self.box("e", d, part, depth)

    def prescripts(self, node: etree._Element, target: etree._Element, parent: etree._Element,
                   depth: int) -> None:
        _, below, above, _ = _scripts(node)
        pre = _el("sPre", parent)
        self.box("sub", pre, [below] if below is not None else None, depth)
        self.box("sup", pre, [above] if above is not None else None, depth)
        self.box("e", pre, [target], depth)

    def matrix(self, table: etree._Element, parent: etree._Element, depth: int) -> None:
        rows = [[cell for cell in row if cell.tag == "mtd"] for row in table
                if row.tag in ("mtr", "mlabeledtr")]
        if not rows:
            return
        width = max(len(row) for row in rows) or 1
        aligns = (table.get("columnalign") or "").split()
        matrix = _el("m", parent)
        props = _el("mPr", matrix)
        _el("plcHide", props, "1")
        columns = _el("mcs", props)
        for c in range(width):
            align = next((row[c].get("columnalign") for row in rows
                          if c < len(row) and row[c].get("columnalign")), None)
            align = align or (aligns[min(c, len(aligns) - 1)] if aligns else "center")
            props = _el("mcPr", _el("mc", columns))
            _el("count", props, "1")
            _el("mcJc", props, align if align in ("left", "right") else "center")
        for row in rows:
            mr = _el("mr", matrix)
            for c in range(width):
                cell = self.box("e", mr, list(row[c]) if c < len(row) else None, depth)
                if not len(cell):  # LibreOffice drops an empty cell and shifts the row
                    self.run(" ", cell, literal=True)

    # -- one node ----------------------------------------------------------------------
    def run(self, text: str, parent: etree._Element, *, sty: str | None = None,
            scr: str | None = None, normal: bool = False, literal: bool = False) -> None:
        if not text:
            return
        if _COMMAND.search(text):
            raise FormulaError("a LaTeX command is left in the formula")
        r = _el("r", parent)
        if normal or sty or scr or literal:
            props = _el("rPr", r)
            if literal:
                _el("lit", props)
            if normal:
                _el("nor", props)
            else:
                if scr:
                    _el("scr", props, scr)
                if sty:
                    _el("sty", props, sty)
        t = _el("t", r)
        t.text = text
        if text != text.strip() or "  " in text:
            t.set(XML_SPACE, "preserve")

    def node(self, node: etree._Element, parent: etree._Element, depth: int) -> None:
        if depth > MAX_TREE_DEPTH:
            raise FormulaError("formula nested too deeply")
        if isinstance(node, _Group):
            self.group(node, parent, depth)
            return
        tag = node.tag
        children = list(node)
        if tag == "mi":
            text = _text(node)
            scr, sty = VARIANTS.get(node.get("mathvariant") or "", (None, None))
            if sty is None and scr is None and len(text) > 1:
                sty = "p"  # a multi-letter identifier is upright
            self.run(text, parent, sty=sty, scr=scr)
        elif tag == "mn":
            scr, sty = VARIANTS.get(node.get("mathvariant") or "", (None, None))
            self.run(_text(node), parent, sty=None if sty == "p" else sty, scr=scr)
        elif tag in ("mo", "ms"):
            text = _text(node)
            first = next(iter(parent), None) is None  # (len() of an lxml element counts)
            self.run(text, parent, literal=first and text.strip() in LEADING_LITERAL
                     or "#" in text or "\\" in text)
        elif tag == "mtext":
            self.run(_text(node), parent, normal=True)
        elif tag == "mspace":
            width = node.get("width") or ""
            match = re.match(r"(-?[\d.]+)em$", width)
            size = float(match.group(1)) if match else 0.0
            self.run(next((s for limit, s in SPACES if size >= limit), ""), parent)
        elif tag in _TRANSPARENT:
            fence = _fence(node)
            if fence is not None:
                opening, closing, after = fence
                self.delimited(opening, children[1:len(children) - after], closing, parent,
                               depth)
            else:
                self.sequence(children, parent, depth + 1)
        elif tag == "mfrac":
            if len(children) != 2:
                raise FormulaError("<mfrac> without two children")
            fraction = _el("f", parent)
            if node.get("linethickness") in ("0", "0pt", "0em"):
                _el("type", _el("fPr", fraction), "noBar")
            self.box("num", fraction, [children[0]], depth)
            self.box("den", fraction, [children[1]], depth)
        elif tag == "msqrt":
            radical = _el("rad", parent)
            _el("degHide", _el("radPr", radical), "1")
            _el("deg", radical)
            self.box("e", radical, children, depth)
        elif tag == "mroot":
            if len(children) != 2:
                raise FormulaError("<mroot> without two children")
            radical = _el("rad", parent)
            _el("radPr", radical)
            self.box("deg", radical, [children[1]], depth)
            self.box("e", radical, [children[0]], depth)
        elif tag in ("msub", "msup", "msubsup"):
            base, below, above, _ = _scripts(node)
            script = _el({"msub": "sSub", "msup": "sSup", "msubsup": "sSubSup"}[tag], parent)
            self.box("e", script, [base], depth)
            if below is not None:
                self.box("sub", script, [below], depth)
            if above is not None:
                self.box("sup", script, [above], depth)
        elif tag in ("munder", "mover", "munderover"):
            self.under_over(node, parent, depth)
        elif tag == "mtable":
            self.matrix(node, parent, depth)
        elif tag in ("mtr", "mlabeledtr", "mtd"):
            self.sequence(children, parent, depth + 1)
        elif tag == "menclose":
            notation = (node.get("notation") or "box").split()
            border = _el("borderBox", parent)
            strikes = {"updiagonalstrike": "strikeBLTR", "downdiagonalstrike": "strikeTLBR",
                       "horizontalstrike": "strikeH", "verticalstrike": "strikeV"}
            if notation and notation[0] in strikes:
                props = _el("borderBoxPr", border)
                for side in ("hideTop", "hideBot", "hideLeft", "hideRight"):
                    _el(side, props, "1")
                _el(strikes[notation[0]], props, "1")
            self.box("e", border, children, depth)
        elif tag == "mphantom":
            self.box("e", _el("phant", parent), children, depth)
        elif tag == "mfenced":
            self.delimited(node.get("open", "("), children, node.get("close", ")"), parent,
                           depth)
        elif tag in ("annotation", "none", "mprescripts"):
            return
        else:  # merror, mmultiscripts, anything new
            raise FormulaError(f"<{tag}> has no Word math equivalent here")

    def group(self, group: _Group, parent: etree._Element, depth: int) -> None:
        if group.scripted is None:
            self.delimited(group.opening, group.inner, group.closing, parent, depth)
            return
        _, below, above, _ = _scripts(group.scripted)
        script = _el({"msub": "sSub", "msup": "sSup", "msubsup": "sSubSup"}[
            group.scripted.tag], parent)
        self.delimited(group.opening, group.inner, group.closing, _el("e", script), depth)
        if below is not None:
            self.box("sub", script, [below], depth)
        if above is not None:
            self.box("sup", script, [above], depth)

    def under_over(self, node: etree._Element, parent: etree._Element, depth: int) -> None:
        base, below, above, _ = _scripts(node)
        if below is not None and above is not None:
            upper = _el("limUpp", parent)
            lower = _el("limLow", _el("e", upper))
            self.box("e", lower, [base], depth)
            self.box("lim", lower, [below], depth)
            self.box("lim", upper, [above], depth)
            return
        script = above if above is not None else below
        assert script is not None
        mark = _text(_unwrap(script)).strip() if _unwrap(script).tag == "mo" else ""
        top = above is not None
        if top and mark in ACCENTS and mark not in BARS:
            accent = _el("acc", parent)
            _el("chr", _el("accPr", accent), ACCENTS[mark])
            self.box("e", accent, [base], depth)
        elif mark in BARS or (not top and mark == "¯"):
            bar = _el("bar", parent)
            _el("pos", _el("barPr", bar), "top" if top else "bot")
            self.box("e", bar, [base], depth)
        elif mark in GROUP_CHARS:
            group = _el("groupChr", parent)
            props = _el("groupChrPr", group)
            _el("chr", props, mark)
            _el("pos", props, "top" if top else "bot")
            _el("vertJc", props, "bot" if top else "top")
            self.box("e", group, [base], depth)
        else:
            limit = _el("limUpp" if top else "limLow", parent)
            self.box("e", limit, [base], depth)
            self.box("lim", limit, [script], depth)


def mathml_to_omml(math: etree._Element) -> etree._Element:
    """``m:oMath`` for a cleaned MathML tree (see ``mathml.mathml_tree``); raises
    ``FormulaError`` for what it cannot map."""
    root = etree.Element(m("oMath"), nsmap=NSMAP)
    _Converter().sequence(list(math), root, 0)
    _literal_ends(root)
    if not len(root):
        raise FormulaError("the formula is empty")
    return root


def omml_math(latex: str, display: bool) -> tuple[etree._Element, str | None]:
    """``m:oMath`` for ``latex`` (a fresh tree) and its ``\\tag`` (or None); raises on
    failure."""
    math, tag = _cached_omml(latex, display)
    return copy.deepcopy(math), tag


def clear_caches() -> None:
    """Forget cached conversions (for measuring the uncached cost)."""
    shared_tree.cache_clear()
    _cached_omml.cache_clear()


@functools.lru_cache(maxsize=CACHE_SIZE)
def _cached_omml(latex: str, display: bool) -> tuple[etree._Element, str | None]:
    math, normalised = shared_tree(latex, display)
    return mathml_to_omml(math), normalised.tag


def omml_inline(latex: str) -> etree._Element | None:
    """``m:oMath`` for an inline formula, to put inside a ``w:p`` among its runs; None when it
    cannot convert (keep the LaTeX as text then)."""
    try:
        return omml_math(latex, display=False)[0]
    except Exception:  # the boundary: any failure below means "keep the text"
        return None


def omml_display(latex: str) -> tuple[etree._Element, str | None] | None:
    """``m:oMathPara`` holding the ``m:oMath`` of a display formula, and its ``\\tag`` text
    (``(n)``) or None; None when it cannot convert."""
    try:
        math, tag = omml_math(latex, display=True)
    except Exception:  # the boundary: any failure below means "keep the text"
        return None
    para = etree.Element(m("oMathPara"), nsmap=NSMAP)
    para.append(math)
    return para, tag
