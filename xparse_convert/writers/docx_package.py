"""The DOCX package around a streamed ``word/document.xml``: the fixed parts come from
python-docx's default template (so styles are Word's own), pictures are stored as they arrive,
and relationships, content types, numbering and properties are written at the end.

Every zip entry carries a fixed timestamp, so the same input gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from functools import lru_cache
from importlib import resources
from typing import IO
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
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


class DocxPackage:
    """Writes the zip: pictures and links as they come, everything else in ``finish``."""

    def __init__(self, out: IO[bytes]) -> None:
        self.zip = zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self._rels: list[tuple[str, str, str, bool]] = []  # id, type, target, external
        self._media: dict[str, str] = {}  # sha1 -> relationship id
        self._links: dict[str, str] = {}
        self._extensions: set[str] = set()

    def _next_id(self) -> str:
        return f"rId{len(self._rels) + 10}"

    def _info(self, name: str, compress: bool = True) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def write(self, name: str, data: bytes, compress: bool = True) -> None:
        self.zip.writestr(self._info(name, compress), data)

    def add_image(self, data: bytes, extension: str) -> str:
        """Store a picture once (by content) and return its relationship id."""
        digest = hashlib.sha1(data).hexdigest()
        if digest in self._media:
            return self._media[digest]
        rid = self._next_id()
        name = f"media/image{len(self._media) + 1}.{extension}"
        self.write(f"word/{name}", data, compress=False)  # already compressed formats
        self._rels.append((rid, _REL + "image", name, False))
        self._media[digest] = rid
        self._extensions.add(extension)
        return rid

    def add_link(self, url: str) -> str:
        """An external hyperlink relationship (one per distinct URL)."""
        if url not in self._links:
            rid = self._next_id()
            self._rels.append((rid, _REL + "hyperlink", url, True))
            self._links[url] = rid
        return self._links[url]

    def finish(self, write_document: Callable[[IO[bytes]], None], *, ordered_runs: int,
               core: dict[str, str], custom: dict[str, str]) -> None:
        """Write ``word/document.xml`` (streamed by ``write_document``) and every other part,
        then close the zip."""
        with self.zip.open(self._info("word/document.xml"), "w", force_zip64=True) as part:
            write_document(part)
        template = _template()
        self.write("word/styles.xml", styles_xml())
        self.write("word/numbering.xml", numbering_xml(ordered_runs))
        for name, _, _ in _FIXED_PARTS:
            self.write(name, template[name])
        self.write("docProps/core.xml", _core_xml(core))
        self.write("docProps/app.xml", _APP_XML)
        self.write("docProps/custom.xml", _custom_xml(custom))
        self.write("word/_rels/document.xml.rels", self._document_rels())
        self.write("_rels/.rels", _ROOT_RELS)
        self.write("[Content_Types].xml", self._content_types())
        self.zip.close()

    def _document_rels(self) -> bytes:
        rels = [("rId1", _REL + "styles", "styles.xml", False),
                ("rId2", _REL + "numbering", "numbering.xml", False)]
        rels += [(f"rId{3 + i}", _REL + kind, name.removeprefix("word/"), False)
                 for i, (name, _, kind) in enumerate(_FIXED_PARTS)]
        rels += self._rels
        body = "".join(
            f'<Relationship Id="{rid}" Type="{kind}" Target={quoteattr(target)}'
            + (' TargetMode="External"' if external else "") + "/>"
            for rid, kind, target, external in rels)
        return (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<Relationships xmlns="{REL_NS}">{body}</Relationships>').encode()

    def _content_types(self) -> bytes:
        defaults = [("rels", "application/vnd.openxmlformats-package.relationships+xml"),
                    ("xml", "application/xml")]
        defaults += [(ext, IMAGE_TYPES[ext]) for ext in sorted(self._extensions)]
        overrides = [("/word/document.xml", _CT + "wordprocessingml.document.main+xml"),
                     ("/word/styles.xml", _CT + "wordprocessingml.styles+xml"),
                     ("/word/numbering.xml", _CT + "wordprocessingml.numbering+xml")]
        overrides += [(f"/{name}", ctype) for name, ctype, _ in _FIXED_PARTS]
        overrides += [("/docProps/core.xml",
                       "application/vnd.openxmlformats-package.core-properties+xml"),
                      ("/docProps/app.xml", _CT + "extended-properties+xml"),
                      ("/docProps/custom.xml", _CT + "custom-properties+xml")]
        body = "".join(f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in defaults)
        body += "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides)
        return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns='
                '"http://schemas.openxmlformats.org/package/2006/content-types">'
                f"{body}</Types>").encode()


_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<Relationships xmlns="{REL_NS}">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
    'metadata/core-properties" Target="docProps/core.xml"/>'
    '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/extended-properties" Target="docProps/app.xml"/>'
    '<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/custom-properties" Target="docProps/custom.xml"/>'
    "</Relationships>"
).encode()

_APP_XML = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'extended-properties"><Application>xparse-convert</Application></Properties>'
)


def _core_xml(fields: dict[str, str]) -> bytes:
    parts = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields.items() if value)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/'
            'metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/">'
            f"{parts}</cp:coreProperties>").encode()


def _custom_xml(props: dict[str, str]) -> bytes:
    items = "".join(
        '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" '
        f'pid="{i + 2}" name={quoteattr(name)}><vt:lpwstr>{escape(value)}</vt:lpwstr></property>'
        for i, (name, value) in enumerate(props.items()) if value)
    return ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
            'custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
            f'docPropsVTypes">{items}</Properties>').encode()
