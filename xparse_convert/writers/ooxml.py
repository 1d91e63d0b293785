"""What every Office Open XML package needs, shared by the DOCX and XLSX writers: a zip with
fixed timestamps (byte-identical output), content types, relationships, core properties."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable
from typing import IO

ZIP_DATE = (1980, 1, 1, 0, 0, 0)
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
DOC_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships/"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships/"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'

Relationship = tuple[str, str, str, bool]  # id, type, target, external


# What ``xml.sax.saxutils`` writes, byte for byte, without importing it: that module imports
# urllib.request (and so http and ssl), 20 ms for every command that lists the writers.
def escape(text: str) -> str:
    """Text for XML content: ``&``, ``<`` and ``>`` as entities."""
    return text.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")


def quoteattr(text: str) -> str:
    """An attribute value in its quotes: double, or single when it holds only ``"``."""
    text = escape(text).replace("\n", "&#10;").replace("\r", "&#13;").replace("\t", "&#9;")
    if '"' not in text:
        return f'"{text}"'
    if "'" not in text:
        return f"'{text}'"
    return '"' + text.replace('"', "&quot;") + '"'


class _Zip(zipfile.ZipFile):
    """A zip that only ``close`` finishes.  ``ZipFile`` closes itself when collected; a
    conversion that failed or was interrupted (even inside a writer's ``begin``) has
    already discarded the file, and that late close would write into it and print an
    "Exception ignored" traceback."""

    def __del__(self) -> None:
        pass


class Package:
    """A zip written part by part; one part at a time may be streamed (``stream``).  A
    package that is never closed (the conversion failed) leaves its file as it is."""

    def __init__(self, out: IO[bytes]) -> None:
        self.zip = _Zip(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)

    @staticmethod
    def _info(name: str, compress: bool) -> zipfile.ZipInfo:
        info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
        info.external_attr = 0o644 << 16
        return info

    def write(self, name: str, data: bytes, compress: bool = True) -> None:
        self.zip.writestr(self._info(name, compress), data)

    def stream(self, name: str) -> IO[bytes]:
        """A writable part; close it before writing any other part."""
        return self.zip.open(self._info(name, True), "w", force_zip64=True)

    def close(self) -> None:
        self.zip.close()


def relationships(rels: Iterable[Relationship]) -> bytes:
    body = "".join(
        f'<Relationship Id="{rid}" Type="{kind}" Target={quoteattr(target)}'
        + (' TargetMode="External"' if external else "") + "/>"
        for rid, kind, target, external in rels)
    return f'{XML_HEAD}<Relationships xmlns="{REL_NS}">{body}</Relationships>'.encode()


def content_types(defaults: Iterable[tuple[str, str]],
                  overrides: Iterable[tuple[str, str]]) -> bytes:
    base = [("rels", "application/vnd.openxmlformats-package.relationships+xml"),
            ("xml", "application/xml")]
    body = "".join(f'<Default Extension="{e}" ContentType="{t}"/>' for e, t in
                   [*base, *defaults])
    body += "".join(f'<Override PartName="{p}" ContentType="{t}"/>' for p, t in overrides)
    return (f'{XML_HEAD}<Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            f'content-types">{body}</Types>').encode()


CORE_TYPE = "application/vnd.openxmlformats-package.core-properties+xml"
APP_TYPE = "application/vnd.openxmlformats-officedocument.extended-properties+xml"
CUSTOM_TYPE = "application/vnd.openxmlformats-officedocument.custom-properties+xml"


def core_xml(fields: dict[str, str]) -> bytes:
    """``docProps/core.xml`` from ``{"dc:title": ..., "dc:description": ...}``; no dates, so
    the same input gives the same bytes."""
    parts = "".join(f"<{tag}>{escape(value)}</{tag}>" for tag, value in fields.items() if value)
    return (f'{XML_HEAD}<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/'
            '2006/metadata/core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
            'xmlns:dcterms="http://purl.org/dc/terms/">'
            f"{parts}</cp:coreProperties>").encode()


def app_xml(application: str = "xparse-convert") -> bytes:
    return (f'{XML_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/'
            f'2006/extended-properties"><Application>{escape(application)}</Application>'
            "</Properties>").encode()


def custom_xml(props: dict[str, str]) -> bytes:
    """``docProps/custom.xml``: text properties (empty ones left out)."""
    items = "".join(
        '<property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" '
        f'pid="{i + 2}" name={quoteattr(name)}><vt:lpwstr>{escape(value)}</vt:lpwstr></property>'
        for i, (name, value) in enumerate(props.items()) if value)
    return (f'{XML_HEAD}<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/'
            '2006/custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/'
            f'2006/docPropsVTypes">{items}</Properties>').encode()


def root_relationships(main_part: str, main_type: str, custom: bool) -> bytes:
    rels: list[Relationship] = [
        ("rId1", DOC_REL + main_type, main_part, False),
        ("rId2", PKG_REL + "metadata/core-properties", "docProps/core.xml", False),
        ("rId3", DOC_REL + "extended-properties", "docProps/app.xml", False),
    ]
    if custom:
        rels.append(("rId4", DOC_REL + "custom-properties", "docProps/custom.xml", False))
    return relationships(rels)
