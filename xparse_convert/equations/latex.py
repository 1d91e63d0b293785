"""The one normalisation pass that turns the LaTeX an OCR engine writes into LaTeX latex2mathml
reads as the author meant it.  Every writer's math goes through ``normalise``; the rules, in the
order they run (7-11 share one pass, and so do 13, 14 and 19):

1. Length: more than ``MAX_CHARS`` characters is refused (``FormulaError``).
2. Entities: ``&lt;`` ``&gt;`` ``&amp;`` ``&quot;`` ``&apos;`` ``&nbsp;`` and numeric ``&#..;``
   are decoded (twice, for doubly escaped text), so ``&amp;`` separates matrix columns again.
3. Delimiters: ``$$..$$``, ``\\[..\\]``, ``\\(..\\)`` and ``$..$`` around the whole are dropped.
4. ``%`` is a percent sign (OCR never writes TeX comments): an unescaped one becomes ``\\%``.
5. Braces balance: a ``}`` that closes nothing is dropped, missing ``}`` are added at the end.
6. Nesting deeper than ``MAX_DEPTH`` groups is refused (so no later walk can blow the stack).
7. ``\\tag{n}`` / ``\\tag*{n}`` is taken out and returned as the tag (``(n)`` / ``n``);
   ``\\label{..}``, ``\\nonumber``, ``\\notag``, ``\\vspace{..}`` are dropped; ``\\eqref{x}`` and
   ``\\ref{x}`` become the text ``(x)`` and ``x``.
8. ``\\ce{..}`` (mhchem) is rewritten by ``chem.ce_to_latex``; ``\\pu{..}`` becomes upright text.
9. Aliases: a few commands latex2mathml does not know but OCR writes (``\\arg``, ``\\ohm``,
   ``\\textcelsius``, ``\\lbrack``, ``\\Alpha``, ``\\textcircled{1}``, ...) become ones it knows
   (``ALIASES``), ``\\not=`` / ``\\not<`` / ``\\not>`` become ``\\neq`` / ``\\nless`` / ``\\ngtr``.
10. Glued commands: an unknown ``\\name`` whose longest known prefix (two letters or more) is a
    command is split there, the rest being letters: ``\\vertx`` -> ``\\vert x``,
    ``\\timeswidth`` -> ``\\times width``.
11. ``\\mathrm{..}`` holding only letters, digits, CJK and spaces is upright text:
    ``\\mathrm { d }`` -> ``\\text{d}`` (TeX drops the spaces; latex2mathml would italicise a
    single letter).
12. Environments latex2mathml gets wrong become ``array``: ``aligned``/``align``/``split``/
    ``alignat``/``flalign`` (columns right, left, right, ...), ``eqnarray`` (``rcl``),
    ``gathered``/``gather``/``multline`` (one centred column); ``equation`` and ``displaymath``
    are unwrapped; ``dcases`` is ``cases``; ``rcases`` is an array closed by a right brace.
13. Whitespace outside text is insignificant in math mode (TeX ignores it): it is removed,
    except one space after a control word followed by a letter.  ``\\frac { 1 4 } { 3 }`` ->
    ``\\frac{14}{3}``, so OCR-spaced digits are one number again.
14. CJK outside ``\\text{}`` is wrapped in ``\\text{}`` (upright text, not italic letters).
15. ``&`` or ``\\\\`` outside any environment (an OCR engine dropped the ``aligned``) wraps the
    whole formula in an ``array`` as rule 12 would.
16. A ``\\\\`` (and ``\\hline``) just before ``\\end{..}`` is dropped (no empty last row).
17. ``\\left``/``\\right`` pair up within their brace group; one without its partner loses the
    ``\\left``/``\\right`` (its delimiter stays, a ``.`` delimiter goes).
18. ``\\big``-family sizes before a delimiter latex2mathml cannot size (``\\{``, ``\\langle``, ...)
    or before nothing are dropped; the delimiter stays.
19. Inside text arguments, ``\\%`` ``\\&`` ``\\$`` ``\\#`` ``\\_`` ``\\{`` ``\\}`` are their
    characters, and ``<``, ``>``, ``&`` are replaced by private-use placeholders
    (``TEXT_PLACEHOLDERS``): latex2mathml copies text unescaped into its XML; ``mathml.py``
    puts the characters back after parsing.
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

from ..patterns import LazyPattern
from .chem import ce_to_latex
from .errors import FormulaError

MAX_CHARS = 4000
MAX_DEPTH = 40


@dataclass(frozen=True)
class Normalised:
    latex: str
    tag: str | None = None


# Rule 19: characters latex2mathml would copy raw into XML, and what stands for them.
TEXT_PLACEHOLDERS = {"<": "\ue000", ">": "\ue001", "&": "\ue002"}

TEXT_COMMANDS = frozenset({
    "text", "textrm", "textbf", "textit", "textsf", "texttt", "textup", "textmd", "textnormal",
    "mbox", "hbox", "emph", "fbox",
})

ALIASES = {
    "arg": r"\operatorname{arg}", "sgn": r"\operatorname{sgn}", "tr": r"\operatorname{tr}",
    "P": "¶", "ohm": r"\Omega", "AA": "Å", "micro": "µ", "textmu": "µ", "permil": "‰",
    "perthousand": "‰", "textperthousand": "‰", "textdegree": "°", "celsius": "℃",
    "textcelsius": "℃", "degreecelsius": "℃", "lbrack": "[", "rbrack": "]", "dag": r"\dagger",
    "ddag": r"\ddagger", "hdots": r"\ldots", "overarc": r"\overparen", "wideparen": r"\overparen",
    "i": "ı", "j": "ȷ", "textless": "<", "textgreater": ">", "textsc": r"\text",
    "nicefrac": r"\frac", "sfrac": r"\frac", "mathbbm": r"\mathbb", "mathbfit": r"\boldsymbol",
    "Alpha": "A", "Beta": "B", "Epsilon": "E", "Zeta": "Z", "Eta": "H", "Iota": "I",
    "Kappa": "K", "Mu": "M", "Nu": "N", "Omicron": "O", "Rho": "P", "Tau": "T", "Chi": "X",
    "dif": "d", "hline": "", "nonumber": "", "notag": "", "displaybreak": "",
    "allowbreak": "", "newline": r"\\",
}
_DROP_WITH_ARGUMENT = frozenset({"label", "vspace", "cline"})
_NOT = {"=": r"\neq", "<": r"\nless", ">": r"\ngtr"}
_CIRCLED = {str(n): chr(0x2460 + n - 1) for n in range(1, 21)}
_BIG = re.compile(r"\\[Bb]igg?[lrm]?$")
_SIZABLE = frozenset("()[]|/.")

_ALIGNED = frozenset({"aligned", "align", "align*", "split", "alignat", "alignat*", "alignedat",
                      "flalign", "flalign*"})
_GATHERED = frozenset({"gathered", "gather", "gather*", "multline", "multline*"})
_UNWRAPPED = frozenset({"equation", "equation*", "displaymath", "math"})
_ARGUMENT_ENVS = frozenset({"alignat", "alignat*", "alignedat"})  # a column count follows

_TOKEN = re.compile(r"\\(?:begin|end)\s*\{\s*[A-Za-z]+\*?\s*\}|\\[A-Za-z]+|\\.|\s+|.", re.S)
_ENV = re.compile(r"\\(begin|end)\s*\{\s*([A-Za-z]+\*?)\s*\}")
_CJK = LazyPattern("[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\u3000-\u303f\uff00-\uffef]+")
_ENTITY = re.compile(r"&(lt|gt|amp|quot|apos|nbsp|#\d{1,7}|#[xX][0-9a-fA-F]{1,6});")
_DELIMITED = re.compile(r"^\s*(?:\$\$(.*)\$\$|\\\[(.*)\\\]|\\\((.*)\\\)|\$(.*)\$)\s*$", re.S)
_SIMPLE_RM = LazyPattern(r"^[\sA-Za-z0-9\u2e80-\u9fff]*$")


@functools.cache
def known_commands() -> frozenset[str]:
    """Command names (without the backslash) that latex2mathml or this pass handles."""
    names: set[str] = set(ALIASES) | _DROP_WITH_ARGUMENT | {"ce", "pu", "tag", "eqref", "ref",
                                                            "textcircled"}
    try:
        from latex2mathml import commands
        from latex2mathml.symbols_parser import SYMBOLS
    except ImportError:  # pragma: no cover - latex2mathml is a dependency
        return frozenset(names)

    def add(value: object) -> None:
        if isinstance(value, str) and value.startswith("\\") and value[1:].isalpha():
            names.add(value[1:])

    for value in [*vars(commands).values(), SYMBOLS]:
        if isinstance(value, str):
            add(value)
        elif isinstance(value, (dict, tuple, list, set, frozenset)):
            for item in value:
                add(item)
    return frozenset(names)


def _decode_entities(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        decoded = html.unescape(match.group(0))
        return " " if decoded == "\xa0" else decoded

    for _ in range(2):
        text = _ENTITY.sub(one, text)
    return text


def _strip_delimiters(text: str) -> str:
    match = _DELIMITED.match(text)
    if match:
        return next(g for g in match.groups() if g is not None)
    return text


def _group_end(tokens: list[str], start: int) -> int:
    """Index of the ``}`` matching the ``{`` at ``start`` (braces are balanced by now)."""
    depth = 0
    for i in range(start, len(tokens)):
        if tokens[i] == "{":
            depth += 1
        elif tokens[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    raise FormulaError("unbalanced braces")


def _next_group(tokens: list[str], i: int) -> tuple[int, int] | None:
    """(start, end) of the brace group that begins at ``i`` or after spaces; None if none."""
    while i < len(tokens) and tokens[i].isspace():
        i += 1
    if i < len(tokens) and tokens[i] == "{":
        return i, _group_end(tokens, i)
    return None


def _balance_braces(tokens: list[str]) -> list[str]:
    """Rule 5."""
    out: list[str] = []
    depth = 0
    for token in tokens:
        if token == "}":
            if depth == 0:
                continue
            depth -= 1
        elif token == "{":
            depth += 1
        out.append(token)
    return out + ["}"] * depth


def _check_depth(tokens: list[str]) -> None:
    """Rule 6 over every kind of nesting: braces, ``\\left``, environments."""
    depth = 0
    for token in tokens:
        if token == "{" or token == "\\left" or token.startswith("\\begin"):
            depth += 1
            if depth > MAX_DEPTH:
                raise FormulaError(f"nested more than {MAX_DEPTH} groups deep")
        elif token == "}" or token == "\\right" or token.startswith("\\end"):
            depth = max(depth - 1, 0)


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(text)


def _plain(tokens: list[str]) -> str:
    return "".join(tokens).strip()


def _commands(tokens: list[str]) -> tuple[list[str], str | None]:
    """Rules 7-11: one left-to-right pass over control words (text arguments untouched)."""
    known = known_commands()
    out: list[str] = []
    tag: str | None = None
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _is_text_command(token):
            group = _next_group(tokens, i + 1)
            if group is not None:
                out += tokens[i:group[1] + 1]
                i = group[1] + 1
                continue
        if not (token.startswith("\\") and token[1:2].isalpha()) or token.startswith(
                ("\\begin", "\\end")) and _ENV.match(token):
            out.append(token)
            i += 1
            continue
        name = token[1:]
        after = i + 1
        if name == "tag":
            star = after < len(tokens) and tokens[after] == "*"
            group = _next_group(tokens, after + star)
            if group is not None:
                content = _plain(tokens[group[0] + 1:group[1]])
                if tag is None:
                    tag = content if star else f"({content})"
                i = group[1] + 1
                continue
        if name in _DROP_WITH_ARGUMENT or name in ("eqref", "ref", "ce", "pu", "textcircled"):
            group = _next_group(tokens, after)
            if group is None:
                raise FormulaError(f"\\{name} without its argument")
            content = _plain(tokens[group[0] + 1:group[1]])
            i = group[1] + 1
            if name == "eqref":
                out += ["\\text", "{", f"({content})", "}"]
            elif name == "ref":
                out += ["\\text", "{", content, "}"]
            elif name == "ce":
                out += ["{", *_tokens(ce_to_latex(content)), "}"]
            elif name == "pu":
                out += ["\\text", "{", content, "}"]
            elif name == "textcircled":
                out += ["\\text", "{", _CIRCLED.get(content, f"({content})"), "}"]
            continue
        if name == "not":
            j = after
            while j < len(tokens) and tokens[j].isspace():
                j += 1
            if j < len(tokens) and tokens[j] in _NOT:
                out.append(_NOT[tokens[j]])
                i = j + 1
                continue
        if name == "mathrm":
            group = _next_group(tokens, after)
            if group is not None:
                content = "".join(tokens[group[0] + 1:group[1]])
                if _SIMPLE_RM.match(content) and content.strip():
                    out += ["\\text", "{", "".join(content.split()), "}"]
                    i = group[1] + 1
                    continue
        if name in ALIASES:
            out += _tokens(ALIASES[name]) if ALIASES[name] else []
            i += 1
            continue
        if name not in known:
            for cut in range(len(name) - 1, 1, -1):
                if name[:cut] in known:
                    out += [f"\\{name[:cut]}", " ", *name[cut:]]
                    break
            else:
                out.append(token)
            i += 1
            continue
        out.append(token)
        i += 1
    return out, tag


def _env_name(token: str) -> tuple[str, str] | None:
    match = _ENV.match(token) if token.startswith(("\\begin", "\\end")) else None
    return (match.group(1), match.group(2)) if match else None


def _columns(tokens: list[str], start: int, end: int) -> int:
    """Cells in the widest row between ``start`` and ``end`` at the outer level."""
    widest = cells = 1
    depth = 0
    for token in tokens[start:end]:
        if token == "{" or token.startswith("\\begin"):
            depth += 1
        elif token == "}" or token.startswith("\\end"):
            depth -= 1
        elif depth == 0 and token == "&":
            cells += 1
            widest = max(widest, cells)
        elif depth == 0 and token == "\\\\":
            cells = 1
    return widest


def _aligned_spec(columns: int) -> str:
    return "".join("rl"[c % 2] for c in range(columns))


def _environments(tokens: list[str]) -> list[str]:
    """Rule 12: rewrite environments (innermost first is not needed: each pair is independent)."""
    stack: list[tuple[int, str]] = []
    pairs: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        env = _env_name(token)
        if env is None:
            continue
        kind, name = env
        if kind == "begin":
            stack.append((i, name))
        else:
            if not stack or stack[-1][1] != name:
                raise FormulaError(f"\\end{{{name}}} does not close the open environment")
            start, _ = stack.pop()
            pairs.append((start, i, name))
    if stack:
        raise FormulaError(f"\\begin{{{stack[-1][1]}}} is never closed")
    replace: dict[int, list[str]] = {}
    for start, end, name in pairs:
        body = start + 1
        if name in _ARGUMENT_ENVS:
            group = _next_group(tokens, body)
            if group is not None:
                for k in range(body, group[1] + 1):
                    replace[k] = []
                body = group[1] + 1
        if name in _ALIGNED or name in ("eqnarray", "eqnarray*"):
            spec = "rcl" if name.startswith("eqnarray") else _aligned_spec(
                _columns(tokens, body, end))
            replace[start] = ["\\begin{array}", "{", spec, "}"]
            replace[end] = ["\\end{array}"]
        elif name in _GATHERED:
            replace[start] = ["\\begin{array}", "{", "c", "}"]
            replace[end] = ["\\end{array}"]
        elif name in _UNWRAPPED:
            replace[start] = []
            replace[end] = []
        elif name == "dcases":
            replace[start] = ["\\begin{cases}"]
            replace[end] = ["\\end{cases}"]
        elif name == "rcases":
            replace[start] = ["\\left", ".", "\\begin{array}", "{", "ll", "}"]
            replace[end] = ["\\end{array}", "\\right", "\\}"]
    out: list[str] = []
    for i, token in enumerate(tokens):
        if i in replace:
            out += replace[i]
        else:
            env = _env_name(token)
            out.append(f"\\{env[0]}{{{env[1]}}}" if env else token)
    return out


def _is_text_command(token: str) -> bool:
    return token.startswith("\\") and token[1:] in TEXT_COMMANDS


def _text_char(token: str) -> str:
    """A token inside a text argument as latex2mathml must get it (rule 19)."""
    if len(token) == 2 and token[0] == "\\" and token[1] in "%&$#_{}":
        token = token[1]
    return TEXT_PLACEHOLDERS.get(token, token)


def _whitespace_and_cjk(tokens: list[str]) -> list[str]:
    """Rules 13, 14 and 19, which all need to know where text arguments are."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if _is_text_command(token):
            group = _next_group(tokens, i + 1)
            if group is not None:
                out += [token, "{", *map(_text_char, tokens[group[0] + 1:group[1]]), "}"]
                i = group[1] + 1
                continue
        if token.isspace():
            previous = out[-1] if out else ""
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            if previous[:1] == "\\" and previous[1:].isalpha() and following[:1].isalpha():
                out.append(" ")
            i += 1
            continue
        if _CJK.match(token):
            run = [token]
            j = i + 1
            while j < len(tokens) and (_CJK.match(tokens[j]) or tokens[j].isspace()):
                run.append(tokens[j])
                j += 1
            while run[-1].isspace():
                run.pop()
                j -= 1
            out += ["\\text", "{", *run, "}"]
            i = j
            continue
        out.append(token)
        i += 1
    return out


def _top_level_rows(tokens: list[str]) -> list[str]:
    """Rule 15."""
    depth = 0
    has_cells = has_rows = False
    for token in tokens:
        if token == "{" or token.startswith("\\begin"):
            depth += 1
        elif token == "}" or token.startswith("\\end"):
            depth -= 1
        elif depth == 0 and token == "&":
            has_cells = True
        elif depth == 0 and token == "\\\\":
            has_rows = True
    if not (has_cells or has_rows):
        return tokens
    while tokens and tokens[-1] == "\\\\":
        tokens = tokens[:-1]
    spec = _aligned_spec(_columns(tokens, 0, len(tokens))) if has_cells else "c"
    return ["\\begin{array}", "{", spec, "}", *tokens, "\\end{array}"]


def _trailing_rows(tokens: list[str]) -> list[str]:
    """Rule 16."""
    out: list[str] = []
    for token in tokens:
        if token.startswith("\\end"):
            while out and out[-1] in ("\\\\", "\\hline"):
                out.pop()
        out.append(token)
    return out


def _pair_left_right(tokens: list[str]) -> list[str]:
    """Rule 17: ``\\left``/``\\right`` match only within one brace group (as in TeX)."""
    unmatched: set[int] = set()
    stack: list[tuple[int, int]] = []  # (token index, brace depth)
    depth = 0
    for i, token in enumerate(tokens):
        if token == "{":
            depth += 1
        elif token == "}":
            while stack and stack[-1][1] == depth:
                unmatched.add(stack.pop()[0])
            depth -= 1
        elif token == "\\left":
            stack.append((i, depth))
        elif token == "\\right":
            if stack and stack[-1][1] == depth:
                stack.pop()
            else:
                unmatched.add(i)
    unmatched.update(i for i, _ in stack)
    if not unmatched:
        return tokens
    out: list[str] = []
    skip_dot = False
    for i, token in enumerate(tokens):
        if i in unmatched:
            skip_dot = True
            continue
        if skip_dot:
            skip_dot = False
            if token == ".":
                continue
        out.append(token)
    return out


def _big_sizes(tokens: list[str]) -> list[str]:
    """Rule 18."""
    out: list[str] = []
    for i, token in enumerate(tokens):
        if _BIG.match(token):
            following = tokens[i + 1] if i + 1 < len(tokens) else ""
            if following not in _SIZABLE:
                continue
        out.append(token)
    return out


def normalise(latex: str) -> Normalised:
    """The LaTeX latex2mathml should see for ``latex``, and its ``\\tag`` if any; raises
    ``FormulaError`` for input this pass refuses (too long, too deep, unbalanced
    environments, an ``\\ce`` outside the supported subset)."""
    if len(latex) > MAX_CHARS:
        raise FormulaError(f"longer than {MAX_CHARS} characters")
    text = _strip_delimiters(_decode_entities(latex))
    tokens = ["\\%" if t == "%" else t for t in _tokens(text)]  # rule 4
    tokens = _balance_braces(tokens)
    _check_depth(tokens)
    tokens, tag = _commands(tokens)
    tokens = _environments(tokens)
    tokens = _whitespace_and_cjk(tokens)
    tokens = _top_level_rows(tokens)
    tokens = _trailing_rows(tokens)
    tokens = _pair_left_right(tokens)
    tokens = _big_sizes(tokens)
    result = "".join(tokens).strip()
    if not result:
        raise FormulaError("empty formula")
    return Normalised(result, tag)
