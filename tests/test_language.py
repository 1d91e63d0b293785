"""The document's language (``language.py``)."""

from __future__ import annotations

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
