"""A subset of mhchem's ``\\ce{..}`` as LaTeX latex2mathml reads: what chemistry text in
reports and exam papers uses.

Supported: coefficients (``2H2O``, ``1/2O2``), element symbols set upright (``\\text{..}``),
counts as subscripts (``H2SO4``, ``Fe(OH)3``, ``[Cu(NH3)4]2+``, explicit ``H_2`` / ``_{2}``),
charges (a sign ending a species: ``Na+``, ``NH4+``, ``OH-``; or a superscript: ``Fe^3+``,
``SO4^{2-}``), states (``(s)`` ``(l)`` ``(g)`` ``(aq)``), hydrate dots (``CuSO4*5H2O``,
``.``, ``·``), isotopes (``^{14}_{6}C``), electrons (``e-``), bonds inside a species (``=``,
``#``), ``+`` between species, gas ``^`` and precipitate ``v`` marks, and the arrows ``->``
``<-`` ``<->`` ``<=>`` ``<=>>`` ``<<=>`` ``=`` with optional text above and below
(``->[\\Delta]``, ``->[高温][催化剂]``).  Anything else raises ``ChemError`` (the writer then
keeps the text).
"""

from __future__ import annotations

import re

from .errors import FormulaError


class ChemError(FormulaError):
    """Chemistry outside the supported subset."""


_ARROWS = {
    "<=>>": r"\rightleftharpoons", "<<=>": r"\rightleftharpoons", "<=>": r"\rightleftharpoons",
    "<->": r"\leftrightarrow", "->": r"\rightarrow", "<-": r"\leftarrow", "=": "=",
}
_EXTENSIBLE = {
    r"\rightleftharpoons": r"\xrightleftharpoons", r"\leftrightarrow": r"\xleftrightarrow",
    r"\rightarrow": r"\xrightarrow", r"\leftarrow": r"\xleftarrow", "=": r"\xlongequal",
}
_ARROW = re.compile(r"<=>>|<<=>|<=>|<->|->|<-")
_STATES = frozenset({"s", "l", "g", "aq", "cr", "c", "sln", "soln"})
_ELEMENT = re.compile(r"[A-Z][a-z]?")
_DIGITS = re.compile(r"\d+")
_CHARGE = re.compile(r"[+-]$")  # as mhchem: digits after a symbol are a count
_COEFFICIENT = re.compile(r"\(?\d+/\d+\)?|\d+(?:\.\d+)?")
MAX_CE_CHARS = 1000


def _bracketed(text: str, start: int, open_: str, close: str) -> int:
    """Index just past the ``close`` matching the ``open_`` at ``start``."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == open_:
            depth += 1
        elif text[i] == close:
            depth -= 1
            if depth == 0:
                return i + 1
    raise ChemError(f"unclosed {open_!r} in chemistry")


def _script(text: str, i: int) -> tuple[str, int]:
    """The argument of ``_``/``^`` at ``i``: a braced group, a charge, or digits."""
    if i < len(text) and text[i] == "{":
        end = _bracketed(text, i, "{", "}")
        return text[i + 1:end - 1], end
    match = re.compile(r"\d*[+-]|\d+").match(text, i)
    if not match:
        raise ChemError("a script without its argument in chemistry")
    return match.group(0), match.end()


def _upright(value: str) -> str:
    return r"\text{" + value + "}"


def _species(word: str) -> str:
    """One species (a word without spaces) as LaTeX."""
    if _COEFFICIENT.fullmatch(word):
        return word
    out: list[str] = []
    i = 0
    match = _COEFFICIENT.match(word)
    if match and match.end() < len(word):
        coefficient = match.group(0).strip("()")
        if "/" in coefficient:
            top, bottom = coefficient.split("/")
            out.append(rf"\frac{{{top}}}{{{bottom}}}")
        else:
            out.append(coefficient)
        i = match.end()
    atoms = ""  # element letters waiting to be written as one upright run
    can_count = False  # a count may follow (after an element or a group)

    def flush() -> None:
        nonlocal atoms
        if atoms:
            out.append(_upright(atoms))
            atoms = ""

    while i < len(word):
        ch = word[i]
        charge = _CHARGE.match(word, i)
        if can_count and charge and charge.end() == len(word):
            flush()
            out.append(f"^{{{charge.group(0)}}}")
            break
        element = _ELEMENT.match(word, i)
        if element:
            atoms += element.group(0)
            i = element.end()
            can_count = True
            continue
        if ch == "e" and word[i + 1:] in ("-", "^-", "^{-}"):
            flush()
            out.append(r"\text{e}^{-}")
            break
        if ch.isdigit() and can_count:
            digits = _DIGITS.match(word, i)
            assert digits is not None
            flush()
            out.append(f"_{{{digits.group(0)}}}")
            i = digits.end()
            continue
        if ch in "_^":
            value, i = _script(word, i + 1)
            flush()
            if ch == "^" and not out and i < len(word):  # an isotope before its symbol
                out.append(r"{}")
            out.append(f"{ch}{{{value}}}")
            can_count = False
            continue
        if ch in "([":
            close = ")" if ch == "(" else "]"
            end = _bracketed(word, i, ch, close)
            inner = word[i + 1:end - 1]
            flush()
            if ch == "(" and inner in _STATES:
                out.append(_upright(f"({inner})"))
            else:
                out.append(ch + _species(inner) + close if inner else ch + close)
            i = end
            can_count = True
            continue
        if ch in "*.·":
            flush()
            out.append(r"\cdot ")
            rest = _COEFFICIENT.match(word, i + 1)
            if rest:
                out.append(rest.group(0))
                i = rest.end()
            else:
                i += 1
            can_count = False
            continue
        if ch in "=#-":
            flush()
            out.append({"=": "=", "#": r"\equiv ", "-": "-"}[ch])
            i += 1
            can_count = False
            continue
        raise ChemError(f"{ch!r} is outside the supported chemistry")
    flush()
    if not out:
        raise ChemError("an empty species")
    return "".join(out)


def _arrow_text(argument: str) -> str:
    """Text above or below an arrow: a species, math (``$..$`` or commands), or words."""
    argument = argument.strip()
    if argument.startswith("$") and argument.endswith("$") and len(argument) > 1:
        return argument.strip("$")
    if "\\" in argument:
        return argument
    try:
        return _species(argument) if " " not in argument else _upright(argument)
    except ChemError:
        return _upright(argument)


def ce_to_latex(body: str) -> str:
    """LaTeX for the content of ``\\ce{..}``; raises ``ChemError`` outside the subset."""
    if len(body) > MAX_CE_CHARS:
        raise ChemError(f"chemistry longer than {MAX_CE_CHARS} characters")
    out: list[str] = []
    i = 0
    text = body.strip()
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        arrow = _ARROW.match(text, i)
        standalone = (i + 1 == len(text) or text[i + 1].isspace())
        if arrow or ch == "=" and standalone:
            symbol = _ARROWS[arrow.group(0) if arrow else "="]
            i = arrow.end() if arrow else i + 1
            above = below = None
            if i < len(text) and text[i] == "[":
                end = _bracketed(text, i, "[", "]")
                above, i = _arrow_text(text[i + 1:end - 1]), end
                if i < len(text) and text[i] == "[":
                    end = _bracketed(text, i, "[", "]")
                    below, i = _arrow_text(text[i + 1:end - 1]), end
            if above is None and below is None:
                out.append(symbol)
            else:
                below_part = f"[{below}]" if below else ""
                out.append(f"{_EXTENSIBLE[symbol]}{below_part}{{{above or ''}}}")
            continue
        end = i
        while end < len(text) and not text[end].isspace():
            if text[end] == "[" and end > i:  # [..] inside a species (complex ions)
                end = _bracketed(text, end, "[", "]")
                continue
            if _ARROW.match(text, end) and end > i:
                break
            end += 1
        word = text[i:end]
        i = end
        if word == "+":
            out.append("+")
        elif word == "^":
            out.append(r"\uparrow")
        elif word == "v":
            out.append(r"\downarrow")
        elif word.startswith("(") and word.endswith(")") and word[1:-1] in _STATES:
            out.append(_upright(word))
        else:
            out.append(_species(word))
    if not out:
        raise ChemError("empty chemistry")
    return " ".join(out)


def chemical_latex(text: str) -> str:
    """LaTeX for the text of a Chemical element: ``\\ce{..}`` and math are kept for the
    normalisation pass; bare chemistry (``H2SO4``, ``H_2SO_4``, ``2H2 + O2 -> 2H2O``) is read
    as an ``\\ce`` body.  Raises ``ChemError`` when it is neither."""
    stripped = text.strip()
    if "\\" in stripped or stripped.startswith("$"):
        return stripped
    return ce_to_latex(stripped)
