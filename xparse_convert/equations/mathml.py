"""LaTeX -> safe MathML: the normalised LaTeX through latex2mathml, its output rebuilt from an
allow-list of elements and attributes (latex2mathml passes ``<script>``, ``href`` and
``javascript:`` through), with no LaTeX command left in any token.

``mathml_tree`` gives the bare tree (what ``omml.py`` maps to Word math); ``latex_to_mathml`` and
``mathml_inline`` give a ``<math>`` element for HTML with the source LaTeX kept as annotation,
or None when the formula cannot be converted.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

from lxml import etree

from .latex import MAX_DEPTH, TEXT_PLACEHOLDERS, FormulaError, Normalised, normalise

MATHML_ELEMENTS = frozenset({
    "math", "semantics", "annotation", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace",
    "msub", "msup", "msubsup", "mfrac", "msqrt", "mroot", "munder", "mover", "munderover",
    "mtable", "mtr", "mtd", "mlabeledtr", "mstyle", "mpadded", "mphantom", "menclose", "mfenced",
    "merror", "mmultiscripts", "mprescripts", "none",
})
MATHML_ATTRIBUTES = frozenset({
    "display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "accent",
    "accentunder", "columnalign", "rowalign", "columnspacing", "rowspacing", "width", "height",
    "depth", "linethickness", "displaystyle", "scriptlevel", "notation", "open", "close",
    "separators", "minsize", "maxsize", "movablelimits", "symmetric", "largeop", "form",
    "columnlines", "rowlines", "frame", "align", "encoding", "voffset", "columnspan",
    "rowspan",
})
TOKEN_ELEMENTS = frozenset({"mi", "mn", "mo", "ms", "mtext"})
# MathML nests about three elements per LaTeX group; deeper than this is not a formula.
MAX_TREE_DEPTH = 4 * MAX_DEPTH + 20

_COMMAND = re.compile(r"\\[A-Za-z]")
_RESTORE = {v: k for k, v in TEXT_PLACEHOLDERS.items()}
_RESTORE_RE = re.compile("|".join(_RESTORE))
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, remove_comments=True,
                          remove_pis=True)


def _append_text(parent: etree._Element, text: str) -> None:
    if len(parent):
        parent[-1].tail = (parent[-1].tail or "") + text
    else:
        parent.text = (parent.text or "") + text


def clean_mathml(node: Any, out_parent: etree._Element | None = None, depth: int = 0
                 ) -> etree._Element | None:
    """A copy of a MathML tree with only allowed elements and attributes (no namespace); the
    text of anything else is kept as text, ``<script>``/``<style>`` text is dropped."""
    if depth > MAX_TREE_DEPTH:
        raise FormulaError("MathML nested too deeply")
    tag = etree.QName(node).localname if isinstance(node.tag, str) else None
    if tag in MATHML_ELEMENTS:
        copy = etree.Element(tag) if out_parent is None else etree.SubElement(out_parent, tag)
        for name, value in node.attrib.items():
            local = etree.QName(name).localname
            if local in MATHML_ATTRIBUTES and "javascript" not in value.lower():
                copy.set(local, value)
        copy.text = node.text
        for child in node:
            clean_mathml(child, copy, depth + 1)
            if child.tail:
                _append_text(copy, child.tail)
        return copy
    if out_parent is not None:  # not allowed: keep its text only
        _append_text(out_parent, "".join(node.itertext()) if tag not in ("script", "style")
                     else "")
    return None


def _restore(text: str | None) -> str | None:
    return _RESTORE_RE.sub(lambda m: _RESTORE[m.group(0)], text) if text else text


# Documents repeat formulas (``$x$``, ``$n$`` in an exam paper); the last few hundred are kept.
CACHE_SIZE = 512


def mathml_tree(latex: str, display: bool) -> tuple[etree._Element, Normalised]:
    """The cleaned ``<math>`` tree for ``latex`` (a fresh copy the caller may change) and the
    normalised source; raises on failure (``FormulaError`` or whatever latex2mathml raises)."""
    math, normalised = shared_tree(latex, display)
    return copy.deepcopy(math), normalised


@functools.lru_cache(maxsize=CACHE_SIZE)
def shared_tree(latex: str, display: bool) -> tuple[etree._Element, Normalised]:
    """``mathml_tree`` without the copy: the tree is shared, so it must not be changed."""
    from latex2mathml.converter import convert

    normalised = normalise(latex)
    markup = convert(normalised.latex, display="block" if display else "inline")
    parsed = etree.fromstring(markup.encode("utf-8"), _PARSER)
    if etree.QName(parsed).localname != "math":
        raise FormulaError("latex2mathml did not return <math>")
    math = clean_mathml(parsed)
    assert math is not None
    for node in math.iter():
        node.text, node.tail = _restore(node.text), _restore(node.tail)
        if node.tag in TOKEN_ELEMENTS and node.text and _COMMAND.search(node.text):
            raise FormulaError(f"unknown command {_COMMAND.search(node.text).group(0)}...")
    return math, normalised


def _with_annotation(math: etree._Element, latex: str, display: bool, tag: str | None
                     ) -> etree._Element:
    semantics = etree.Element("semantics")
    row = etree.SubElement(semantics, "mrow")
    row.text, math.text = math.text, None
    for child in list(math):
        row.append(child)
    if tag and display:
        etree.SubElement(row, "mspace", width="2em")
        etree.SubElement(row, "mtext").text = tag
    annotation = etree.SubElement(semantics, "annotation", encoding="application/x-tex")
    annotation.text = latex
    math.append(semantics)
    math.attrib.clear()
    math.set("display", "block" if display else "inline")
    return math


def latex_to_mathml(latex: str, display: bool) -> etree._Element | None:
    """MathML for ``latex`` with the LaTeX (as given) kept as an annotation; None if it cannot
    convert."""
    try:
        math, normalised = mathml_tree(latex, display)
        return _with_annotation(math, latex, display, normalised.tag)
    except Exception:  # the boundary: latex2mathml raises many kinds; all mean "cannot"
        return None


def mathml_inline(latex: str) -> etree._Element | None:
    """``<math display="inline">`` for an inline formula, or None if it cannot convert."""
    return latex_to_mathml(latex, display=False)
