#!/usr/bin/env python3
"""Measure the MathML -> OMML choices on the formula corpus (tests/data/formulas/corpus.json).

Backends, all fed the same normalised LaTeX (``xparse_convert.equations.normalise``):

    ours         latex2mathml, then ``equations.omml`` (the mapping this project keeps)
    mathml2omml  latex2mathml, then the PyPI package ``mathml2omml`` (``pip install
                 mathml2omml``; its forks ``mathml2omml-as`` and ``mathml-to-omml`` carry the
                 same converter).  Skipped when not installed.
    pandoc       pandoc (texmath) reading ``$$..$$`` and writing DOCX, as a separate program
                 (Debian package ``pandoc``).  Skipped when not installed.

Per backend: how many entries give OMML with the corpus's expected structure (the elements it
lists, its tokens, no LaTeX command left in any ``m:t``: the rule the tests apply), the time per
formula, and with ``--render`` how many LibreOffice shows with all their tokens and without a
parse error (one DOCX per backend, one ``soffice`` run each).

    python benchmarks/formulas.py [--render] [--json results.json]
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lxml import etree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from xparse_convert.equations import normalise  # noqa: E402
from xparse_convert.equations.latex import TEXT_PLACEHOLDERS  # noqa: E402
from xparse_convert.equations.mathml import mathml_tree  # noqa: E402
from xparse_convert.equations.omml import M_NS, clear_caches, mathml_to_omml  # noqa: E402

CORPUS = json.loads((ROOT / "tests/data/formulas/corpus.json").read_text("utf-8"))["formulas"]
M = f"{{{M_NS}}}"
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
COMMAND = re.compile(r"\\[A-Za-z]+")
PANDOC_SAMPLE = 20  # formulas timed one pandoc process each


def flat(text: str) -> str:
    return re.sub(r"\s", "", text)


def problems(entry: dict[str, Any], math: etree._Element | None) -> list[str]:
    if math is None:
        return ["no OMML"]
    out = []
    present = {etree.QName(n).localname for n in math.iter() if isinstance(n.tag, str)}
    missing = [t for t in entry["omml"] if t.split(":")[1] not in present]
    if missing:
        out.append(f"missing {missing}")
    texts = [t.text or "" for t in math.iter(f"{M}t")]
    if any(COMMAND.search(t) for t in texts):
        out.append("command left")
    joined = flat("".join(texts))
    absent = [t for t in entry["tokens"] if flat(t) not in joined]
    if absent:
        out.append(f"tokens {absent}")
    return out


def neutral_ok(entry: dict[str, Any], math: etree._Element | None) -> bool:
    """Backend-neutral: OMML whose text holds every token and no LaTeX command."""
    return math is not None and not [p for p in problems(entry, math) if "missing" not in p]


def broken_radicals(math: etree._Element | None) -> int:
    """Radicals without ``m:deg`` (LibreOffice draws an empty box for them)."""
    if math is None:
        return 0
    return sum(rad.find(f"{M}deg") is None for rad in math.iter(f"{M}rad"))


def source(entry: dict[str, Any]) -> str | None:
    """The normalised LaTeX every backend gets (None when the pre-pass refuses it)."""
    try:
        latex = normalise(entry["latex"]).latex
    except Exception:
        return None
    for char, placeholder in TEXT_PLACEHOLDERS.items():
        latex = latex.replace(placeholder, char)
    return latex


# -- the backends ----------------------------------------------------------------------------
def ours(entry: dict[str, Any]) -> etree._Element | None:
    try:
        math, _ = mathml_tree(entry["latex"], entry["display"])
        return mathml_to_omml(math)
    except Exception:
        return None


def _mathml2omml_module() -> Any:
    try:
        import mathml2omml
    except ImportError:
        return None
    return mathml2omml


def step_times() -> dict[str, float]:
    """Microseconds per formula for the MathML -> OMML step alone (same MathML trees)."""
    trees = []
    for entry in CORPUS:
        try:
            trees.append(mathml_tree(entry["latex"], entry["display"])[0])
        except Exception:
            pass
    out: dict[str, float] = {}

    def run(convert: Callable[[etree._Element], Any]) -> float:
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            for tree in trees:
                try:
                    convert(tree)
                except Exception:
                    pass
            runs.append((time.perf_counter() - started) / len(trees) * 1e6)
        return statistics.median(runs)

    out["ours"] = run(mathml_to_omml)
    module = _mathml2omml_module()
    if module is not None:
        out["mathml2omml"] = run(lambda t: module.convert(etree.tostring(t, encoding="unicode")))
    return out


def make_mathml2omml() -> Callable[[dict[str, Any]], etree._Element | None] | None:
    mathml2omml = _mathml2omml_module()
    if mathml2omml is None:
        return None

    def convert(entry: dict[str, Any]) -> etree._Element | None:
        try:
            math, _ = mathml_tree(entry["latex"], entry["display"])
            out = mathml2omml.convert(etree.tostring(math, encoding="unicode"))
            return etree.fromstring(f'<m:w xmlns:m="{M_NS}">{out}</m:w>')[0]
        except Exception:
            return None

    return convert


def pandoc_docx(entries: list[dict[str, Any]], out: Path) -> float:
    """One DOCX from pandoc with a marker paragraph before each formula; returns seconds."""
    parts = []
    for entry in entries:
        latex = source(entry)
        parts.append(f"MARK{entry['id']}\n\n$${latex or ''}$$\n")
    md = out.with_suffix(".md")
    md.write_text("\n".join(parts), encoding="utf-8")
    started = time.perf_counter()
    subprocess.run(["pandoc", str(md), "-o", str(out)], check=True, capture_output=True)
    return time.perf_counter() - started


def pandoc_results(path: Path) -> dict[str, etree._Element | None]:
    with zipfile.ZipFile(path) as zf:
        body = etree.fromstring(zf.read("word/document.xml"))
    paragraphs = list(body.iter(f"{W}p"))
    out: dict[str, etree._Element | None] = {}
    for i, p in enumerate(paragraphs[:-1]):
        text = "".join(t.text or "" for t in p.iter(f"{W}t"))
        if text.startswith("MARKf"):
            out[text[4:]] = paragraphs[i + 1].find(f".//{M}oMath")
    return out


# -- LibreOffice ---------------------------------------------------------------------------------
def docx_of(results: dict[str, etree._Element | None], path: Path) -> None:
    import docx

    document = docx.Document()
    for entry in CORPUS:
        document.add_paragraph(f"MARK{entry['id']}")
        p = document.add_paragraph()
        math = results.get(entry["id"])
        if math is None:
            p.add_run(entry["latex"])
        else:
            para = etree.SubElement(p._p, f"{M}oMathPara", nsmap={"m": M_NS})
            para.append(etree.fromstring(etree.tostring(math)))
    document.save(str(path))


def rendered_ok(path: Path, profile: Path) -> tuple[int, int]:
    """(entries shown with all tokens and no parse error mark, entries showing LaTeX)."""
    subprocess.run(["soffice", "--headless", f"-env:UserInstallation=file://{profile}",
                    "--convert-to", "pdf", "--outdir", str(path.parent), str(path)],
                   check=True, capture_output=True, timeout=600)
    boxes = subprocess.run(["pdftotext", "-bbox", str(path.with_suffix(".pdf")), "-"],
                           capture_output=True, text=True, check=True).stdout
    words: dict[str, list[str]] = {}
    owner = None
    for page in re.findall(r"<page .*?</page>", boxes, re.S):
        found = sorted((round(float(y) / 4), float(x), html.unescape(w)) for x, y, w in
                       re.findall(r'<word xMin="([^"]*)" yMin="([^"]*)"[^>]*>(.*?)</word>',
                                  page))
        for _, _, word in found:
            if re.fullmatch(r"MARKf\d{3}", word):
                owner = word[4:]
            elif owner:
                words.setdefault(owner, []).append(word)
    good = latex = 0
    for entry in CORPUS:
        text = " ".join(words.get(entry["id"], []))
        latex += bool(COMMAND.search(text))
        if not entry.get("fallback") and "¿" not in text and \
                all(flat(t) in flat(text) for t in entry["tokens"]):
            good += 1
    return good, latex


# -- the run -------------------------------------------------------------------------------------
def timed(convert: Callable[[dict[str, Any]], Any], repeats: int = 3) -> float:
    """Median over ``repeats`` passes of the corpus: microseconds per formula (no formula is
    in the cache: each pass starts empty, and the corpus has no repeats)."""
    runs = []
    for _ in range(repeats):
        clear_caches()
        started = time.perf_counter()
        for entry in CORPUS:
            convert(entry)
        runs.append((time.perf_counter() - started) / len(CORPUS) * 1e6)
    return statistics.median(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--render", action="store_true", help="also render with LibreOffice")
    parser.add_argument("--json", help="write the numbers to this file")
    args = parser.parse_args(argv)
    convertible = [e for e in CORPUS if not e.get("fallback")]
    rows: dict[str, dict[str, Any]] = {}
    backends: dict[str, Callable[[dict[str, Any]], etree._Element | None]] = {"ours": ours}
    other = make_mathml2omml()
    if other is not None:
        backends["mathml2omml"] = other
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, convert in backends.items():
            results = {e["id"]: convert(e) for e in CORPUS}
            rows[name] = {"results": results, "us_per_formula": timed(convert)}
        if shutil.which("pandoc"):
            seconds = pandoc_docx(CORPUS, tmp / "pandoc.docx")
            results = pandoc_results(tmp / "pandoc.docx")
            per_process = []
            for entry in CORPUS[:PANDOC_SAMPLE]:
                started = time.perf_counter()
                pandoc_docx([entry], tmp / "one.docx")
                per_process.append(time.perf_counter() - started)
            rows["pandoc"] = {"results": results, "us_per_formula": seconds / len(CORPUS) * 1e6,
                              "us_per_process": statistics.median(per_process) * 1e6}
        for name, row in rows.items():
            failed = {e["id"]: problems(e, row["results"].get(e["id"])) for e in convertible}
            row["failed"] = {k: v for k, v in failed.items() if v}
            row["structure_ok"] = len(convertible) - len(row["failed"])
            row["neutral_ok"] = sum(neutral_ok(e, row["results"].get(e["id"]))
                                    for e in convertible)
            row["broken_radicals"] = sum(broken_radicals(m) for m in row["results"].values())
            if args.render:
                path = tmp / f"render-{name}.docx"
                docx_of(row["results"], path)
                row["rendered_ok"], row["rendered_latex"] = rendered_ok(path, tmp / "lo")
    n = len(convertible)
    steps = step_times()
    print(f"corpus: {len(CORPUS)} formulas, {n} convertible (the rest must fall back)\n")
    print("| backend | expected structure | tokens, no LaTeX | LibreOffice shows it | "
          "radicals without m:deg | µs/formula (LaTeX->OMML) | µs MathML->OMML step |")
    print("|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        shown = f"{row['rendered_ok']}/{n}" if "rendered_ok" in row else "-"
        total = f"{row['us_per_formula']:.0f}"
        if "us_per_process" in row:
            total += f" (batch; {row['us_per_process'] / 1000:.0f} ms as one process each)"
        step = f"{steps[name]:.0f}" if name in steps else "-"
        print(f"| {name} | {row['structure_ok']}/{n} ({row['structure_ok'] / n:.1%}) | "
              f"{row['neutral_ok']}/{n} | {shown} | {row['broken_radicals']} | {total} | "
              f"{step} |")
    for name, row in rows.items():
        kinds: dict[str, int] = {}
        for issues in row["failed"].values():
            for issue in issues:
                key = issue.split(" [")[0].split(" ")[0] if "missing" not in issue else \
                    issue
                kinds[key] = kinds.get(key, 0) + 1
        common = sorted(kinds.items(), key=lambda kv: -kv[1])[:6]
        print(f"\n{name}: most common problems: " + "; ".join(f"{k} x{v}" for k, v in common))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"steps": steps, **{name: {k: v for k, v in row.items() if k != "results"}
                                for name, row in rows.items()}}, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
