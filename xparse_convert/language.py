"""The document's language, decided once for every writer: ``zh`` when at least 30% of the
letters in the first page's titles (or, without titles there, in its text) are CJK, else
``en``; a language in the metadata wins.

The evidence is the first page because the HTML page names its language in its head and
holds at most that page before writing it; every writer decides from the same elements, so
a DOCX and an HTML page of one result never disagree.  Page furniture does not count (not
every writer receives it)."""

from __future__ import annotations

import re
from typing import Any

from .model import Element
from .patterns import LazyPattern

CJK_SHARE = 0.30
ENOUGH = 4000  # letters counted of each kind of text; more would not change the answer
_CJK = LazyPattern("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7a3]")
_LETTER = re.compile(r"[^\W\d_]")
# what each language sets in a document: DOCX run language, table of contents heading
WORD_LANG = {"zh": "zh-CN", "en": "en-US"}
CONTENTS = {"zh": "目录", "en": "Contents"}
_TAG = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*")


class LanguageGuess:
    """Feed it the elements (cheap: it stops counting once it has seen enough) and ask
    ``language`` at any point."""

    def __init__(self) -> None:
        self._title = [0, 0]  # letters, CJK letters
        self._text = [0, 0]
        self._page: int | None = None  # the first page
        self.settled = False  # True once an element of a later page has come

    def see(self, element: Element) -> None:
        if self.settled or element.is_furniture:
            return
        page = element.page
        if page is not None:
            if self._page is None:
                self._page = page
            elif page != self._page:
                self.settled = True
                return
        counts = self._title if element.type == "Title" else self._text
        if counts[0] >= ENOUGH:
            return
        text = element.text[:ENOUGH]
        counts[0] += len(_LETTER.findall(text))
        counts[1] += len(_CJK.findall(text))

    def language(self, metadata: dict[str, Any] | None = None) -> str:
        """``zh`` or ``en`` by the rule, or the metadata's ``language``/``lang`` tag."""
        given = metadata_language(metadata)
        if given:
            return given
        letters, cjk = self._title if self._title[0] else self._text
        return "zh" if letters and cjk / letters >= CJK_SHARE else "en"


def metadata_language(metadata: dict[str, Any] | None) -> str | None:
    """A language tag the source's metadata gives (``zh-CN``, ``en``), lower-case primary
    subtag first; None when it gives none that looks like one."""
    if not isinstance(metadata, dict):
        return None
    for key in ("language", "lang"):
        value = metadata.get(key)
        if isinstance(value, str) and _TAG.fullmatch(value.strip()):
            primary, _, rest = value.strip().replace("_", "-").partition("-")
            return primary.lower() + (f"-{rest}" if rest else "")
    return None


def word_language(language: str) -> str:
    """The ``w:lang`` value of a language: ``zh`` -> ``zh-CN``; a full tag as it is."""
    return WORD_LANG.get(language, language)


def contents_heading(language: str) -> str:
    return CONTENTS.get(language.split("-")[0], CONTENTS["en"])
