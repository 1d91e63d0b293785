"""The document's language, decided once for every writer: ``zh`` when at least 30% of the
letters in the titles (or, without titles, in the first pages' text) are CJK, else ``en``;
a language in the metadata wins."""

from __future__ import annotations

import re
from typing import Any

from .model import Element

CJK_SHARE = 0.30
FIRST_PAGES = 2  # pages whose text counts when there are no titles
ENOUGH = 4000  # letters counted of each kind of text; more would not change the answer
_CJK = re.compile("[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7a3]")
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

    def see(self, element: Element) -> None:
        if element.type == "Title":
            counts = self._title
        elif element.page is not None and element.page <= FIRST_PAGES and \
                not element.is_furniture:
            counts = self._text
        else:
            return
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
