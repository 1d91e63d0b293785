"""Formulas as real math: the corpus through the command line into DOCX (OMML) and HTML
(MathML), one LibreOffice render of the whole corpus, the OCR normalisation rules, mhchem, and
hostile input."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import DATA, SAMPLE, element, envelope
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree
from lxml import html as lxml_html

from xparse_convert.equations import (
    ChemError,
    ce_to_latex,
    latex_to_mathml,
    mathml_inline,
    normalise,
    omml_display,
    omml_inline,
)
from xparse_convert.equations.latex import MAX_CHARS
from xparse_convert.writers.docx_package import W_NS

M = "{http://schemas.openxmlformats.org/officeDocument/2006/math}"
W = f"{{{W_NS}}}"
CORPUS = json.loads((DATA / "formulas" / "corpus.json").read_text(encoding="utf-8"))["formulas"]
CONVERTIBLE = [e for e in CORPUS if not e.get("fallback")]
COMMAND = re.compile(r"\\[A-Za-z]+")
LIBREOFFICE = shutil.which("soffice") or shutil.which("libreoffice")


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xparse_convert.cli", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def flat(text: str) -> str:
    return re.sub(r"\s", "", text)


def marker(entry: dict) -> str:
    return f"MARK{entry['id']}"


# -- the corpus through the command line --------------------------------------------------------
@pytest.fixture(scope="module")
def corpus_run(tmp_path_factory):
    """One result with a marker paragraph and a Formula element per corpus entry, converted
    once to DOCX and HTML through the command line."""
    tmp = tmp_path_factory.mktemp("corpus")
    elements = []
    for entry in CORPUS:
        elements.append(element(f"m_{entry['id']}", text=marker(entry)))
        elements.append(element(entry["id"], "Formula", entry["latex"]))
    src = tmp / "corpus.json"
    src.write_text(json.dumps(envelope(elements), ensure_ascii=False), encoding="utf-8")
    proc = cli(str(src), "--to", "docx,html", "-o", str(tmp), "--report", str(tmp / "run.json"))
    assert proc.returncode == 0, proc.stderr
    report = json.loads((tmp / "run.json").read_text())
    return tmp, report


def docx_formulas(path: Path) -> dict[str, etree._Element]:
    """Each entry's paragraph: the one after its marker."""
    with zipfile.ZipFile(path) as zf:
        body = etree.fromstring(zf.read("word/document.xml")).find(f"{W}body")
    paragraphs = list(body.iter(f"{W}p"))
    out = {}
    for i, p in enumerate(paragraphs[:-1]):
        text = "".join(t.text or "" for t in p.iter(f"{W}t"))
        if text.startswith("MARKf"):
            out[text[4:]] = paragraphs[i + 1]
    return out


def omml_problems(entry: dict, math: etree._Element | None, tag_text: str | None = None
                  ) -> list[str]:
    """What is wrong with the OMML of an entry (empty when it is what the corpus says)."""
    if math is None:
        return ["no OMML"]
    problems = []
    present = {etree.QName(node).localname for node in math.iter() if isinstance(node.tag, str)}
    missing = [tag for tag in entry["omml"] if tag.split(":")[1] not in present]
    if missing:
        problems.append(f"missing {missing}")
    texts = [t.text or "" for t in math.iter(f"{M}t")]
    if any(COMMAND.search(t) for t in texts):
        problems.append("a LaTeX command in m:t")
    joined = flat("".join(texts))
    absent = [t for t in entry["tokens"] if flat(t) not in joined]
    if absent:
        problems.append(f"tokens {absent} not in {joined!r}")
    if entry.get("tag") and tag_text != entry["tag"]:
        problems.append(f"tag {tag_text!r}")
    return problems


def test_corpus_is_big_and_varied():
    assert len(CORPUS) >= 150
    assert sum(e["kind"] == "ocr" for e in CORPUS) >= 50
    assert {e["display"] for e in CORPUS} == {True, False}
    wanted = {"m:f", "m:rad", "m:deg", "m:nary", "m:sSub", "m:sSup", "m:sSubSup", "m:acc",
              "m:bar", "m:m", "m:d", "m:nor", "m:func", "m:limLow", "m:limUpp", "m:groupChr"}
    assert wanted <= {tag for e in CORPUS for tag in e["omml"]}


def test_corpus_becomes_word_math_with_the_expected_structure(corpus_run):
    tmp, _ = corpus_run
    paragraphs = docx_formulas(tmp / "corpus.docx")
    failed = {}
    for entry in CONVERTIBLE:
        p = paragraphs[entry["id"]]
        para = p.find(f"{M}oMathPara")
        math = para.find(f"{M}oMath") if para is not None else None
        runs = [r for r in p.findall(f"{W}r") if r.find(f"{W}t") is not None]
        tag = "".join(t.text for r in runs for t in r.iter(f"{W}t")) or None
        problems = omml_problems(entry, math, tag)
        if problems:
            failed[entry["id"]] = problems
    assert len(failed) <= 0.05 * len(CORPUS), failed
    for entry in CORPUS:
        if entry.get("fallback"):  # kept as LaTeX text in the Formula style
            p = paragraphs[entry["id"]]
            assert p.find(f"{M}oMathPara") is None
            assert "".join(t.text for t in p.iter(f"{W}t")) == entry["latex"]


def test_corpus_becomes_mathml_with_the_latex_kept(corpus_run):
    tmp, _ = corpus_run
    page = lxml_html.parse(str(tmp / "corpus.html")).getroot()
    failed = {}
    for entry in CORPUS:
        (div,) = page.xpath(f"//div[@data-element-id='{entry['id']}']")
        maths = div.xpath("./math")
        if entry.get("fallback"):
            assert not maths and div.xpath("./code")[0].text == entry["latex"]
            continue
        if len(maths) != 1:
            failed[entry["id"]] = "no MathML"
            continue
        (annotation,) = maths[0].xpath(".//annotation")
        tokens = flat("".join(maths[0].xpath(".//semantics/mrow")[0].itertext()))
        absent = [t for t in entry["tokens"] if flat(t) not in tokens]
        if absent or maths[0].get("display") != "block":
            failed[entry["id"]] = f"tokens {absent}"
        assert annotation.text.strip() in entry["latex"]
    assert len(failed) <= 0.05 * len(CORPUS), failed


def test_every_fallback_is_counted_in_the_warnings(corpus_run):
    _, report = corpus_run
    (run,) = report["inputs"]
    lines = [line for line in run["warnings"] if "formula kept as LaTeX text" in line or
             "more formula-fallback" in line]
    shown = [line for line in lines if "formula kept" in line]
    hidden = sum(int(line.split()[0]) for line in lines if "more formula-fallback" in line)
    fallbacks = [e for e in CORPUS if e.get("fallback")]
    assert len(shown) + hidden == 2 * len(fallbacks)  # once for DOCX, once for HTML
    assert any(f"element {fallbacks[0]['id']} " in line for line in shown)


def test_library_calls_agree_with_the_corpus():
    """The public functions the writers call, display and inline, on every entry."""
    failed = {}
    for entry in CONVERTIBLE:
        if entry["display"]:
            converted = omml_display(entry["latex"])
            math, tag = (converted[0].find(f"{M}oMath"), converted[1]) if converted else \
                (None, None)
        else:
            math, tag = omml_inline(entry["latex"]), None
            if math is not None:
                assert math.tag == f"{M}oMath"
        problems = omml_problems(entry, math, tag)
        mathml = (latex_to_mathml(entry["latex"], True) if entry["display"] else
                  mathml_inline(entry["latex"]))
        if mathml is None:
            problems.append("no MathML")
        elif not entry["display"]:
            assert mathml.get("display") == "inline"
        if problems:
            failed[entry["id"]] = problems
    assert len(failed) <= 0.05 * len(CORPUS), failed
    for entry in CORPUS:
        if entry.get("fallback"):
            assert omml_inline(entry["latex"]) is None and mathml_inline(entry["latex"]) is None


def test_inline_math_sits_among_the_runs_of_a_paragraph():
    from xparse_convert.writers.docx import NSMAP

    p = etree.Element(f"{W}p", nsmap=NSMAP)
    etree.SubElement(etree.SubElement(p, f"{W}r"), f"{W}t").text = "毛利率按 "
    p.append(omml_inline(r"GM=\frac{R-C}{R}"))
    markup = etree.tostring(p, encoding="unicode")
    assert markup.count("xmlns:m=") == 1  # declared once, by the paragraph's document
    assert p[1].tag == f"{M}oMath" and p[1].find(f"{M}f") is not None
    (math,) = mathml_inline(r"GM=\frac{R-C}{R}").xpath("self::math[@display='inline']")
    assert math.xpath(".//mfrac")


# -- LibreOffice reads the equations ------------------------------------------------------------
def _cjk_font() -> bool:
    fc = shutil.which("fc-list")
    return bool(fc and subprocess.run([fc, ":lang=zh"], capture_output=True, text=True).stdout)


@pytest.fixture(scope="module")
def rendered(corpus_run):
    """The corpus DOCX rendered once by LibreOffice: each entry's words from the PDF (placed
    by position under its marker)."""
    assert LIBREOFFICE, "CI must have LibreOffice (installed by .ci/run)"
    tmp, _ = corpus_run
    proc = subprocess.run([LIBREOFFICE, "--headless", f"-env:UserInstallation=file://{tmp}/lo",
                           "--convert-to", "pdf", "--outdir", str(tmp), str(tmp / "corpus.docx")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and (tmp / "corpus.pdf").is_file(), proc.stderr
    boxes = subprocess.run(["pdftotext", "-bbox", str(tmp / "corpus.pdf"), "-"],
                           capture_output=True, text=True, check=True).stdout
    words: dict[str, list[str]] = {}
    owner = None
    for page in re.findall(r"<page .*?</page>", boxes, re.S):
        found = [(round(float(y) / 4), float(x), html_lib.unescape(w)) for x, y, w in
                 re.findall(r'<word xMin="([^"]*)" yMin="([^"]*)"[^>]*>(.*?)</word>', page)]
        found.sort(key=lambda item: (item[0], item[1]))
        for _, _, word in found:
            if re.fullmatch(r"MARKf\d{3}", word):
                owner = word[4:]
            elif owner is not None:
                words.setdefault(owner, []).append(word)
    return {key: " ".join(value) for key, value in words.items()}


@pytest.mark.skipif(not LIBREOFFICE and not os.environ.get("CI"), reason="no LibreOffice")
def test_libreoffice_shows_the_math_not_latex(rendered):
    with_commands = [e["id"] for e in CORPUS if COMMAND.search(rendered.get(e["id"], ""))]
    assert len(with_commands) <= 0.05 * len(CORPUS), with_commands
    cjk = _cjk_font()
    missing = {}
    for entry in CONVERTIBLE:
        text = flat(rendered.get(entry["id"], ""))
        tokens = [t for t in entry["tokens"] if cjk or not re.search("[\u2e80-\u9fff]", t)]
        absent = [t for t in tokens if flat(t) not in text]
        if absent:
            missing[entry["id"]] = (absent, text)
    assert not missing


# -- the bundled sample ---------------------------------------------------------------------------
def test_sample_formula_and_chemical_are_native_math(tmp_path):
    proc = cli(str(SAMPLE), "--to", "docx,html", "-o", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(tmp_path / "report.docx") as zf:
        root = etree.fromstring(zf.read("word/document.xml"))
    maths = [p.find(f"{M}oMathPara/{M}oMath") for p in root.iter(f"{W}p")
             if p.find(f"{M}oMathPara") is not None]
    texts = [flat("".join(t.text or "" for t in m.iter(f"{M}t"))) for m in maths]
    roe = maths[texts.index("ROE=NetincomeEquity")]
    assert roe.find(f"{M}f") is not None
    h2so4 = maths[texts.index("H2SO4")]
    assert len(h2so4.findall(f"{M}sSub")) == 2
    assert "\\text" not in etree.tostring(root, encoding="unicode")
    page = lxml_html.parse(str(tmp_path / "report.html")).getroot()
    (formula,) = page.xpath("//div[@data-element-id='el_037']/math")
    assert formula.xpath(".//mfrac") and formula.get("display") == "block"
    (chemical,) = page.xpath("//div[@data-element-id='el_044']/math")
    assert len(chemical.xpath(".//msub")) == 2
    assert chemical.xpath(".//annotation")[0].text == "H_2SO_4"
    # the inline formula object of el_012: Word math among the paragraph's runs, inline MathML
    inline = [p for p in root.iter(f"{W}p") if p.find(f"{M}oMath") is not None]
    (gm,) = [p for p in inline if "毛利率" in "".join(t.text or "" for t in p.iter(f"{W}t"))]
    assert gm.find(f"{M}oMath/{M}f") is not None and gm.find(f"{M}oMathPara") is None
    assert "$" not in "".join(t.text or "" for t in gm.iter(f"{W}t"))
    (paragraph,) = page.xpath("//p[@data-element-id='el_012']")
    (math,) = paragraph.xpath("math")
    assert math.get("display") == "inline" and math.xpath(".//mfrac")


def test_tags_and_chemistry_that_is_not(tmp_path, write_json):
    """A ``\\tag`` is a right-aligned number; a Chemical that is not chemistry stays text,
    with a warning per format."""
    src = write_json(envelope([element("f", "Formula", r"$$E = mc^2 \tag{3}$$"),
                               element("c", "Chemical", "sodium chloride solution")]))
    proc = cli(str(src), "--to", "docx,html", "-o", str(tmp_path))
    assert proc.returncode == 0
    assert proc.stderr.count("chemical formula kept as text") == 2
    with zipfile.ZipFile(tmp_path / "input.docx") as zf:
        root = etree.fromstring(zf.read("word/document.xml"))
    (p,) = [p for p in root.iter(f"{W}p") if p.find(f"{M}oMathPara") is not None]
    tabs = p.findall(f"{W}pPr/{W}tabs/{W}tab")
    assert [t.get(f"{W}val") for t in tabs] == ["center", "right"]
    children = [etree.QName(c).localname for c in p]
    assert children[children.index("oMathPara") + 1:] == ["r", "r"]
    assert "".join(p.itertext()).endswith("(3)")
    assert "sodium chloride solution" in ["".join(p.itertext()) for p in root.iter(f"{W}p")]
    page = (tmp_path / "input.html").read_text(encoding="utf-8")
    assert "<mtext>(3)</mtext>" in page and "\\tag" not in page.split("<annotation")[0]
    assert "sodium chloride solution</p>" in page


# -- the normalisation rules --------------------------------------------------------------------
@pytest.mark.parametrize("source, expected", [
    (r"x &lt; y", "x<y"),                                                 # 2
    (r"\begin{matrix}a &amp; b\end{matrix}", r"\begin{matrix}a&b\end{matrix}"),  # 2
    (r"&amp;lt;", "<"),                                                   # 2, doubly escaped
    (r"$$ \frac{a}{b} $$", r"\frac{a}{b}"),                                # 3
    (r"x = 50%", r"x=50\%"),                                               # 4
    (r"\frac{a}{b}}", r"\frac{a}{b}"),                                     # 5
    (r"\frac{1}{2", r"\frac{1}{2}"),                                       # 5
    (r"x \label{a} \nonumber", "x"),                                       # 7
    (r"\arg x", r"\operatorname{arg}x"),                                   # 9
    (r"a \not= b", r"a\neq b"),                                            # 9
    (r"\vertx\vert", r"\vert x\vert"),                                     # 10
    (r"a\timeswidth", r"a\times width"),                                   # 10
    (r"\mathrm { d } x", r"\text{d}x"),                                    # 11
    (r"\begin{aligned}a&=b\\&=c\end{aligned}", r"\begin{array}{rl}a&=b\\&=c\end{array}"),
    (r"\begin{gathered}a\\b\end{gathered}", r"\begin{array}{c}a\\b\end{array}"),   # 12
    (r"\begin{equation}x\end{equation}", "x"),                             # 12
    (r"\frac { 1 4 } { 3 }", r"\frac{14}{3}"),                             # 13
    (r"\alpha x", r"\alpha x"),                                            # 13
    (r"S = 面积", r"S=\text{面积}"),                                        # 14
    (r"a &= b \\ &= c", r"\begin{array}{rl}a&=b\\&=c\end{array}"),          # 15
    (r"\begin{cases}a\\b\\\end{cases}", r"\begin{cases}a\\b\end{cases}"),  # 16
    (r"\left( \frac{1}{2}", r"(\frac{1}{2}"),                              # 17
    (r"\left. x \right|", r"\left.x\right|"),                              # 17 (paired)
    (r"\bigg\{ x", r"\{x"),                                                # 18
    (r"\text{a<b & c}", "\\text{a\ue000b \ue002 c}"),                      # 19
])
def test_normalisation_rules(source, expected):
    assert normalise(source).latex == expected


def test_tags_are_taken_out():
    assert normalise(r"E=mc^2 \tag{1}") == normalise(r"E=mc^2").__class__("E=mc^2", "(1)")
    assert normalise(r"x \tag*{A}").tag == "A"


def test_text_arguments_are_not_touched():
    assert normalise(r"\text{ 100% of  净利润 }").latex == r"\text{ 100% of  净利润 }"


# -- mhchem ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, pieces", [
    ("H2SO4", [r"\text{H}_{2}", r"\text{SO}_{4}"]),
    ("2H2 + O2 -> 2H2O", ["2", r"\rightarrow"]),
    ("Fe^{3+}", [r"\text{Fe}^{3+}"]),
    ("NH4+", [r"_{4}", "^{+}"]),
    ("CuSO4*5H2O", [r"\cdot", "5"]),
    ("NaCl(aq)", [r"\text{(aq)}"]),
    ("CaCO3 ->[\\Delta] CaO + CO2 ^", [r"\xrightarrow{\Delta}", r"\uparrow"]),
    ("N2 + 3H2 <=>[高温][催化剂] 2NH3", [r"\xrightleftharpoons[\text{催化剂}]{\text{高温}}"]),
    ("^{14}_{6}C", ["{}^{14}_{6}"]),
    ("e-", [r"\text{e}^{-}"]),
])
def test_mhchem_subset(body, pieces):
    latex = ce_to_latex(body)
    for piece in pieces:
        assert piece in latex
    assert omml_inline(rf"\ce{{{body}}}") is not None


@pytest.mark.parametrize("body", ["CH3COOH(s) $x$", "h\\nu", "2H2+O2", "[Cu(NH3)4"])
def test_mhchem_outside_the_subset_is_refused(body):
    with pytest.raises(ChemError):
        ce_to_latex(body)


# -- hostile input -------------------------------------------------------------------------------
@pytest.mark.parametrize("latex", [
    "{" * 5000 + "x" + "}" * 5000,
    "\\sqrt" * 1500 + "x",
    "x^" * 2000 + "2",
    "\\left(" * 300 + "x" + "\\right)" * 300,
    "\\frac" * 1000,
    "x" * (MAX_CHARS + 1),
    "\\begin{matrix}" * 100 + "x" + "\\end{matrix}" * 100,
])
def test_hostile_formulas_fall_back_without_crashing(latex):
    assert omml_inline(latex) is None or omml_inline(latex).tag == f"{M}oMath"
    assert latex_to_mathml(latex, True) is None or latex_to_mathml(latex, True).tag == "math"


def test_mathml_stays_inert():
    math = latex_to_mathml(r"\text{<script>alert(1)</script>} \href{javascript:alert(1)}{x}",
                           True)
    assert math is not None
    markup = etree.tostring(math, encoding="unicode")
    assert "<script" not in markup and "javascript:" not in markup.split("<annotation")[0]
    assert "&lt;script&gt;" in markup  # the text is kept, as text


@settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(list("\\{}[]()^_&$%<>#~ 'ax1+=") + [
    "\\frac", "\\left", "\\right", "\\begin{matrix}", "\\end{matrix}", "\\sum", "\\text{",
    "\\sqrt", "\\\\", "\\ce{", "\\tag{", "\\mathrm{", "&lt;", "净"]), max_size=30))
def test_any_input_gives_math_or_none(pieces):
    latex = "".join(pieces)
    math = omml_inline(latex)
    if math is not None:
        assert not any(COMMAND.search(t.text or "") for t in math.iter(f"{M}t"))
        etree.tostring(math)
    mathml = mathml_inline(latex)
    if mathml is not None:
        assert mathml.tag == "math"


def test_toc_entry_shows_math_as_linear_text(tmp_path, write_json):
    src = write_json(envelope([element("t", "Title", "Energy $E=mc^2$ explained",
                                       metadata={"category_depth": 0})]))
    proc = cli(str(src), "--to", "docx", "-o", str(tmp_path), "--docx-toc")
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(tmp_path / "input.docx") as zf:
        root = etree.fromstring(zf.read("word/document.xml"))
    toc = [p for p in root.iter(f"{W}p") if (p.find(f"{W}pPr/{W}pStyle") is not None and
                                             p.find(f"{W}pPr/{W}pStyle").get(f"{W}val") == "TOC1")]
    text = "".join(t.text or "" if t.tag == f"{W}t" else "\t"
                   for t in toc[0].iter(f"{W}t", f"{W}tab") if t.getparent().tag == f"{W}r")
    assert text.partition("\t")[0] == "Energy E=mc^2 explained"  # then its page number
    heading = next(p for p in root.iter(f"{W}p") if p.find(f"{W}pPr/{W}pStyle") is not None
                   and p.find(f"{W}pPr/{W}pStyle").get(f"{W}val") == "Heading1")
    assert heading.find(f"{M}oMath") is not None  # the heading itself holds Word math
