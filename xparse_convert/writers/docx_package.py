"""The DOCX package around a streamed ``word/document.xml``: the fixed parts come from
python-docx's default template (so styles are Word's own), pictures are stored as they arrive,
and relationships, content types, numbering and properties are written at the end."""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import IO

from lxml import etree

from .ooxml import (
    APP_TYPE,
    CORE_TYPE,
    CUSTOM_TYPE,
    DOC_REL,
    Package,
    Relationship,
    app_xml,
    content_types,
    core_xml,
    custom_xml,
    relationships,
    root_relationships,
)

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"

_CT = "application/vnd.openxmlformats-officedocument."

# Parts copied from the template unchanged: (part name, content type)
_FIXED_PARTS = (
    ("word/settings.xml", _CT + "wordprocessingml.settings+xml", "settings"),
    ("word/webSettings.xml", _CT + "wordprocessingml.webSettings+xml", "webSettings"),
    ("word/fontTable.xml", _CT + "wordprocessingml.fontTable+xml", "fontTable"),
    ("word/theme/theme1.xml", _CT + "theme+xml", "theme"),
)

IMAGE_TYPES = {"png": "image/png", "jpeg": "image/jpeg", "gif": "image/gif", "bmp": "image/bmp",
               "tiff": "image/tiff"}

# Styles the template lacks and the writer uses.  Word's own names, so they behave like the
# built-ins (the TOC field fills "toc N", hyperlinks use "Hyperlink").
_EXTRA_STYLES = "".join(
    f'<w:style w:type="paragraph" w:styleId="TOC{n}"><w:name w:val="toc {n}"/>'
    '<w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:uiPriority w:val="39"/>'
    f'<w:unhideWhenUsed/><w:pPr><w:spacing w:after="100"/><w:ind w:left="{(n - 1) * 220}"/>'
    "</w:pPr></w:style>" for n in range(1, 10)
) + (
    '<w:style w:type="character" w:styleId="Hyperlink"><w:name w:val="Hyperlink"/>'
    '<w:basedOn w:val="DefaultParagraphFont"/><w:uiPriority w:val="99"/><w:unhideWhenUsed/>'
    '<w:rPr><w:color w:val="0563C1" w:themeColor="hyperlink"/><w:u w:val="single"/></w:rPr>'
    "</w:style>"
    '<w:style w:type="paragraph" w:customStyle="1" w:styleId="SourceCode">'
    '<w:name w:val="Source Code"/><w:basedOn w:val="Normal"/><w:qFormat/>'
    '<w:pPr><w:spacing w:before="0" w:after="0" w:line="240" w:lineRule="auto"/></w:pPr>'
    '<w:rPr><w:rFonts w:ascii="Consolas" w:hAnsi="Consolas" w:cs="Consolas"/>'
    '<w:sz w:val="19"/><w:szCs w:val="19"/></w:rPr></w:style>'
    '<w:style w:type="paragraph" w:customStyle="1" w:styleId="Formula">'
    '<w:name w:val="Formula"/><w:basedOn w:val="Normal"/><w:next w:val="Normal"/><w:qFormat/>'
    '<w:pPr><w:jc w:val="center"/></w:pPr>'
    '<w:rPr><w:rFonts w:ascii="Cambria Math" w:hAnsi="Cambria Math"/></w:rPr></w:style>'
)

BULLET_ABSTRACT, DECIMAL_ABSTRACT = 90, 91
BULLET_NUM = 90
_BULLETS = ("\u2022", "\u25e6", "\u25aa")


def _numbering_levels(ordered: bool) -> str:
    levels = []
    for lvl in range(9):
        indent = 720 * (lvl + 1)
        if ordered:
            fmt = ("decimal", "lowerLetter", "lowerRoman")[lvl % 3]
            text = f"%{lvl + 1}."
        else:
            fmt = "bullet"
            text = _BULLETS[lvl % 3]
        levels.append(
            f'<w:lvl w:ilvl="{lvl}"><w:start w:val="1"/><w:numFmt w:val="{fmt}"/>'
            f'<w:lvlText w:val="{text}"/><w:lvlJc w:val="left"/>'
            f'<w:pPr><w:ind w:left="{indent}" w:hanging="360"/></w:pPr></w:lvl>')
    return "".join(levels)


@lru_cache(maxsize=1)
def _template() -> dict[str, bytes]:
    """The parts of python-docx's default template, read once per process."""
    ref = resources.files("docx") / "templates" / "default.docx"
    with ref.open("rb") as handle, zipfile.ZipFile(handle) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


@lru_cache(maxsize=1)
def styles_xml() -> bytes:
    """The template's styles with the few the writer adds."""
    styles = _template()["word/styles.xml"]
    close = styles.rindex(b"</w:styles>")
    return styles[:close] + _EXTRA_STYLES.encode() + styles[close:]


def numbering_xml(ordered_runs: int) -> bytes:
    """The template's numbering plus a bullet list and one restartable decimal list per run of
    numbered items (abstract definitions must precede the ``w:num`` entries)."""
    root = etree.fromstring(_template()["word/numbering.xml"])
    first_num = root.find(f"{{{W_NS}}}num")
    abstracts = [
        f'<w:abstractNum xmlns:w="{W_NS}" w:abstractNumId="{BULLET_ABSTRACT}">'
        f'<w:multiLevelType w:val="hybridMultilevel"/>{_numbering_levels(False)}</w:abstractNum>',
        f'<w:abstractNum xmlns:w="{W_NS}" w:abstractNumId="{DECIMAL_ABSTRACT}">'
        f'<w:multiLevelType w:val="hybridMultilevel"/>{_numbering_levels(True)}</w:abstractNum>',
    ]
    for markup in abstracts:
        element = etree.fromstring(markup)
        if first_num is not None:
            first_num.addprevious(element)
        else:
            root.append(element)
    nums = [f'<w:num xmlns:w="{W_NS}" w:numId="{BULLET_NUM}">'
            f'<w:abstractNumId w:val="{BULLET_ABSTRACT}"/></w:num>']
    restart = "".join(f'<w:lvlOverride w:ilvl="{lvl}"><w:startOverride w:val="1"/>'
                      "</w:lvlOverride>" for lvl in range(9))
    for run in range(ordered_runs):
        nums.append(f'<w:num xmlns:w="{W_NS}" w:numId="{BULLET_NUM + 1 + run}">'
                    f'<w:abstractNumId w:val="{DECIMAL_ABSTRACT}"/>{restart}</w:num>')
    for markup in nums:
        root.append(etree.fromstring(markup))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", standalone=True)


def settings_xml(*, even_and_odd: bool, update_fields: bool, language: str) -> bytes:
    """The template's settings, with odd and even headers, fields updated on opening (Word
    asks once; it fills the table of contents' page numbers) and the theme's language."""
    settings = _template()["word/settings.xml"]
    if even_and_odd:
        settings = settings.replace(b"<w:characterSpacingControl",
                                    b"<w:evenAndOddHeaders/><w:characterSpacingControl", 1)
    if update_fields:
        settings = settings.replace(b"<w:compat>", b'<w:updateFields w:val="true"/><w:compat>', 1)
    western, east_asia = _languages(language)
    return settings.replace(b'<w:themeFontLang w:val="en-US" w:eastAsia="ja-JP"/>',
                            f'<w:themeFontLang w:val="{western}" w:eastAsia="{east_asia}"/>'
                            .encode(), 1)


def _languages(language: str) -> tuple[str, str]:
    """Word's two run languages for a document language: the one of Latin text and the one
    of CJK text.  A Chinese document's Latin text stays English: with Chinese as the
    Latin-text language, LibreOffice breaks lines inside numbers ("0791-86 / 281485")."""
    if language.split("-")[0] in ("zh", "ja", "ko"):
        return "en-US", language
    return language, "zh-CN"


def language_styles(language: str) -> bytes:
    """``styles_xml`` with the document's language as every run's default (spelling,
    hyphenation, and the font a CJK character gets)."""
    western, east_asia = _languages(language)
    return styles_xml().replace(
        b'<w:lang w:val="en-US" w:eastAsia="en-US" w:bidi="ar-SA"/>',
        f'<w:lang w:val="{western}" w:eastAsia="{east_asia}" w:bidi="ar-SA"/>'.encode(), 1)


class DocxPackage(Package):
    """Writes the zip: pictures and links as they come, everything else in ``finish``."""

    def __init__(self, out: IO[bytes]) -> None:
        super().__init__(out)
        self._rels: list[Relationship] = []
        self._media: dict[str, str] = {}  # sha1 -> relationship id
        self._links: dict[str, str] = {}
        self._extensions: set[str] = set()
        self._furniture: dict[bytes, str] = {}  # header/footer part -> relationship id
        self._overrides: list[tuple[str, str]] = []

    def add_furniture(self, kind: str, xml: bytes) -> str:
        """Store a ``header`` or ``footer`` part once (by content); its relationship id.
        Call it while no part is being streamed."""
        key = kind.encode() + b"\0" + xml
        if key in self._furniture:
            return self._furniture[key]
        rid = self._next_id()
        name = f"{kind}{sum(k.startswith(kind.encode()) for k in self._furniture) + 1}.xml"
        self.write(f"word/{name}", xml)
        self._rels.append((rid, DOC_REL + kind, name, False))
        self._overrides.append((f"/word/{name}", _CT + f"wordprocessingml.{kind}+xml"))
        self._furniture[key] = rid
        return rid

    def _next_id(self) -> str:
        return f"rId{len(self._rels) + 10}"

    def add_image(self, data: bytes, extension: str) -> str:
        """Store a picture once (by content) and return its relationship id."""
        digest = hashlib.sha1(data).hexdigest()
        if digest in self._media:
            return self._media[digest]
        rid = self._next_id()
        name = f"media/image{len(self._media) + 1}.{extension}"
        self.write(f"word/{name}", data, compress=False)  # already compressed formats
        self._rels.append((rid, DOC_REL + "image", name, False))
        self._media[digest] = rid
        self._extensions.add(extension)
        return rid

    def add_link(self, url: str) -> str:
        """An external hyperlink relationship (one per distinct URL)."""
        if url not in self._links:
            rid = self._next_id()
            self._rels.append((rid, DOC_REL + "hyperlink", url, True))
            self._links[url] = rid
        return self._links[url]

    def finish(self, write_document: Callable[[IO[bytes]], None], *, ordered_runs: int,
               core: dict[str, str], custom: dict[str, str], language: str = "en-US",
               even_and_odd: bool = False, update_fields: bool = False) -> None:
        """Write ``word/document.xml`` (streamed by ``write_document``) and every other part,
        then close the zip."""
        with self.stream("word/document.xml") as part:
            write_document(part)
        template = _template()
        self.write("word/styles.xml", language_styles(language))
        self.write("word/numbering.xml", numbering_xml(ordered_runs))
        for name, _, _ in _FIXED_PARTS:
            if name == "word/settings.xml":
                self.write(name, settings_xml(even_and_odd=even_and_odd,
                                              update_fields=update_fields, language=language))
            else:
                self.write(name, template[name])
        self.write("docProps/core.xml", core_xml(core))
        self.write("docProps/app.xml", app_xml())
        self.write("docProps/custom.xml", custom_xml(custom))
        rels: list[Relationship] = [("rId1", DOC_REL + "styles", "styles.xml", False),
                                    ("rId2", DOC_REL + "numbering", "numbering.xml", False)]
        rels += [(f"rId{3 + i}", DOC_REL + kind, name.removeprefix("word/"), False)
                 for i, (name, _, kind) in enumerate(_FIXED_PARTS)]
        self.write("word/_rels/document.xml.rels", relationships(rels + self._rels))
        self.write("_rels/.rels", root_relationships("word/document.xml", "officeDocument",
                                                     custom=True))
        overrides = [("/word/document.xml", _CT + "wordprocessingml.document.main+xml"),
                     ("/word/styles.xml", _CT + "wordprocessingml.styles+xml"),
                     ("/word/numbering.xml", _CT + "wordprocessingml.numbering+xml")]
        overrides += [(f"/{name}", ctype) for name, ctype, _ in _FIXED_PARTS]
        overrides += self._overrides
        overrides += [("/docProps/core.xml", CORE_TYPE), ("/docProps/app.xml", APP_TYPE),
                      ("/docProps/custom.xml", CUSTOM_TYPE)]
        self.write("[Content_Types].xml", content_types(
            [(ext, IMAGE_TYPES[ext]) for ext in sorted(self._extensions)], overrides))
        self.close()
