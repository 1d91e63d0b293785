"""The document's language (``language.py``)."""

from __future__ import annotations

import docx
import lxml.html
import pytest
from conftest import element, envelope

from xparse_convert.cli import main
from xparse_convert.language import LanguageGuess, contents_heading
from xparse_convert.model import Element


def el(type_, text, page=1):
    return Element({}, 0, type_=type_, text=text, page=page, id_="x")


def test_titles_decide_and_metadata_wins():
    guess = LanguageGuess()
    guess.see(el("Title", "一、会议召开的情况 Meeting"))
    guess.see(el("NarrativeText", "A long English paragraph " * 20))
    assert guess.language() == "zh"  # titles first: 8 of 15 letters are CJK
    assert guess.language({"language": "en_GB"}) == "en-GB"
    assert contents_heading("zh") == "目录" and contents_heading("en-GB") == "Contents"


def test_without_titles_the_first_pages_count():
    guess = LanguageGuess()
    guess.see(el("NarrativeText", "Quarterly report of the company", page=1))
    guess.see(el("NarrativeText", "第三季度报告" * 50, page=5))  # beyond the first pages
    assert guess.language() == "en"
    assert LanguageGuess().language() == "en"


def test_a_title_after_the_first_page_does_not_count():
    guess = LanguageGuess()
    guess.see(el("Title", "年度报告", page=1))
    guess.see(el("Header", "Annual Report of a Very English Company", page=2))  # furniture
    assert not guess.settled
    guess.see(el("Title", "Management Discussion and Analysis " * 5, page=2))
    assert guess.settled and guess.language() == "zh"


@pytest.mark.parametrize("first, later, expected", [
    ("星河科技年度报告", "Management Discussion and Analysis of Results", "zh"),
    ("Galaxy Tech Annual Report", "经营情况讨论与分析" * 4, "en"),
])
def test_docx_and_html_name_the_same_language(tmp_path, write_json, first, later, expected):
    """The page a DOCX and an HTML page of one result declare agree, whichever formats are
    asked for together (the HTML page can only wait for its first page)."""
    elements = [element("t1", "Title", first, page=1),
                element("p1", "NarrativeText", "text", page=1)]
    elements += [element(f"t{n}", "Title", later, page=n) for n in range(2, 12)]
    source = write_json(envelope(elements))
    languages = {}
    for to in ("docx", "html", "docx,html"):
        out = tmp_path / to
        assert main([str(source), "--to", to, "-o", str(out), "--quiet"]) == 0
        word_file, page = out / "input.docx", out / "input.html"
        if word_file.exists():
            languages[f"{to}:docx"] = docx.Document(str(word_file)).core_properties.language
        if page.exists():
            languages[f"{to}:html"] = lxml.html.parse(str(page)).getroot().get("lang")
    word = {"zh": "zh-CN", "en": "en-US"}[expected]
    assert languages == {"docx:docx": word, "html:html": expected,
                         "docx,html:docx": word, "docx,html:html": expected}
