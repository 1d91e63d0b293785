"""Opening an input: a path, ``-`` (stdin), or a binary file object; gzip and text encodings
are undone here so the reader always sees UTF-8 JSON bytes."""

from __future__ import annotations

import codecs
import gzip
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from . import storage
from .errors import InputError, XParseError
from .storage import ObjectPath, Remote
from .text import replace_surrogates

SourceLike = str | os.PathLike | IO[bytes] | Remote

_GZIP_MAGIC = b"\x1f\x8b"
_UTF8_BOM = codecs.BOM_UTF8
_UTF16_BOMS = ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be"))
_UTF32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)


def stem_of(name: str) -> str:
    """Output stem of an input name: ``result.json`` and ``result.json.gz`` both give ``result``
    (of a URL: the last part of its path, the query left out)."""
    if storage.scheme(name) not in (None, "file"):
        name = storage.url_stem_name(name)
    base = os.path.basename(name.rstrip("/\\")) or "stdin"
    for suffix in (".json.gz", ".jsonl.gz", ".gz", ".json"):
        if base.lower().endswith(suffix) and len(base) > len(suffix):
            return base[: -len(suffix)]
    return base


class _PrefixedStream:
    """Gives back bytes already read (to sniff the start) before the rest of a stream."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = prefix
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            if size < 0:
                data, self._prefix = self._prefix + self._rest.read(), b""
                return data
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            if len(data) < size:
                data += self._rest.read(size - len(data))
            return data
        return self._rest.read(size)


class _Utf8Recoder:
    """Decodes UTF-16 (the BOM already consumed) incrementally and hands out UTF-8 bytes."""

    def __init__(self, raw: IO[bytes], encoding: str) -> None:
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="surrogatepass")
        self._pending = b""
        self._eof = False

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size < 0 or len(self._pending) < size):
            chunk = self._raw.read(max(size, 1 << 16) if size > 0 else -1)
            final = not chunk
            text = self._decoder.decode(chunk, final=final)
            # a raw lone surrogate becomes U+FFFD, as a lone "\ud800" escape does
            self._pending += replace_surrogates(text).encode("utf-8")
            self._eof = final
            if size < 0 and not final:
                continue
        if size < 0:
            data, self._pending = self._pending, b""
        else:
            data, self._pending = self._pending[:size], self._pending[size:]
        return data


@dataclass
class Source:
    """An opened input: ``stream`` yields UTF-8 JSON bytes from the document's first byte."""

    name: str  # as the user named it, for messages
    stem: str  # for output file names
    stream: IO[bytes]
    path: Path | None
    size: int | None  # bytes on disk, when known (progress)
    compressed: bool
    encoding: str
    _owned: list[IO[bytes]]
    remote: Remote | None = None  # a URL input, with its storage options

    @property
    def location(self) -> Path | ObjectPath | None:
        """Where the input is: its path, its object's URL, None for a stream or a web URL."""
        if self.remote is not None and storage.scheme(self.remote.url) not in storage.WEB:
            return ObjectPath(self.remote.url)
        return self.path

    @property
    def reopenable(self) -> bool:
        """True when a second pass over the same bytes is possible (a plain file on disk, an
        object in a store)."""
        return self.path is not None or self.location is not None

    def reopen(self) -> IO[bytes]:
        """A fresh stream of the same bytes (only when ``reopenable``); closed with the source."""
        if self.remote is not None:
            raw, _ = _open_remote(self.remote, self.name)
        else:
            assert self.path is not None
            raw = self.path.open("rb")
        self._owned.append(raw)
        return _open_bytes(raw, self.name)[0]

    def close(self) -> None:
        for handle in reversed(self._owned):
            try:
                handle.close()
            except OSError:
                pass


# What a file that is not a result usually is, by its first bytes.
_NOT_JSON = (
    (b"%PDF-", "a PDF document", True),
    (b"\x89PNG\r\n\x1a\n", "a PNG image", True),
    (b"\xff\xd8\xff", "a JPEG image", True),
    (b"GIF87a", "a GIF image", True),
    (b"GIF89a", "a GIF image", True),
    (b"II*\x00", "a TIFF image", True),
    (b"MM\x00*", "a TIFF image", True),
    (b"BM", "a BMP image", True),
    (b"PK\x03\x04", "a ZIP archive (an Office document such as .docx or .xlsx?)", True),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.doc, .xls, .ppt)", True),
    (b"{\\rtf", "an RTF document", True),
)


def not_json(head: bytes) -> str | None:
    """What the first bytes of a file say it is when it is clearly not JSON, with a hint;
    None when it may be JSON (the parser decides)."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        kind, document = "a WebP image", True
    else:
        match = next(((k, d) for magic, k, d in _NOT_JSON if head.startswith(magic)), None)
        if match is None:
            start = head.lstrip()[:9].lower()
            if not start.startswith((b"<!doctype", b"<html", b"<?xml", b"<")):
                return None
            match = ("an HTML or XML page", False)
        kind, document = match
    hint = " (to parse a document with TextIn first: xparse-convert parse FILE --to ...)" \
        if document else ""
    return f"this is {kind}, not a TextIn result{hint}"


class _RemoteStream:
    """An object's or a web server's stream: its failures become one-line ``InputError``s,
    and a web input stops at its size cap."""

    def __init__(self, raw: IO[bytes], remote: Remote, name: str) -> None:
        self._raw = raw
        self._remote = remote
        self._name = name
        web = storage.scheme(remote.url) in storage.WEB
        self._cap = storage.max_download_bytes(remote.options) if web else None
        self._read = 0

    def read(self, size: int = -1) -> bytes:
        try:
            data = self._raw.read(size)
        except XParseError:
            raise
        except Exception as exc:  # the store's and the network's own errors
            raise InputError(f"cannot read: {storage.describe(exc, self._remote.options)}",
                             source=self._name, where=f"byte {self._read}") from None
        self._read += len(data)
        if self._cap is not None and self._read > self._cap:
            limit = self._remote.options.get("max_download_mb", storage.MAX_DOWNLOAD_MB)
            raise InputError(f"larger than {limit} MB (max_download_mb); refused",
                             source=self._name, where=f"byte {self._cap}")
        return data

    def close(self) -> None:
        try:
            self._raw.close()
        except Exception:  # closing a broken connection: nothing left to save
            pass


def _open_remote(remote: Remote, name: str) -> tuple[IO[bytes], int | None]:
    """Open a URL input: the stream (read as it is consumed) and its size when known."""
    try:
        raw, size = storage.open_input(remote.url, remote.options)
    except XParseError:
        raise
    except IsADirectoryError:
        raise InputError("is a folder of objects (end it with / to convert them all)",
                         source=name) from None
    except Exception as exc:  # FileNotFoundError, PermissionError, the client's errors
        raise InputError(storage.describe(exc, remote.options), source=name) from None
    return _RemoteStream(raw, remote, name), size  # type: ignore[return-value]


def _open_bytes(raw: IO[bytes], name: str) -> tuple[IO[bytes], bool, str]:
    """Undo gzip and BOMs.  Returns (stream of UTF-8 bytes, compressed?, encoding name)."""
    head = raw.read(16)
    compressed = head[:2] == _GZIP_MAGIC
    stream: IO[bytes] = _PrefixedStream(head, raw)  # type: ignore[assignment]
    if compressed:
        stream = gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[arg-type]
        head = stream.read(16)
        stream = _PrefixedStream(head, stream)  # type: ignore[assignment]
    what = not_json(head)
    if what is not None:
        raise InputError(what, source=name, where="byte 0")
    if head.startswith(_UTF8_BOM):
        stream.read(len(_UTF8_BOM))
        return stream, compressed, "utf-8-sig"
    if head[:4] in _UTF32_BOMS:
        raise InputError("UTF-32 text is not supported; save the file as UTF-8",
                         source=name, where="byte 0")
    for bom, encoding in _UTF16_BOMS:
        if head.startswith(bom):
            stream.read(len(bom))
            return _Utf8Recoder(stream, encoding), compressed, encoding  # type: ignore[return-value]
    return stream, compressed, "utf-8"


def open_source(src: SourceLike, *, name: str | None = None) -> Source:
    """Open ``src`` for reading.  ``name`` overrides the display name and stem (stdin)."""
    owned: list[IO[bytes]] = []
    path: Path | None = None
    size: int | None = None
    remote: Remote | None = None
    if isinstance(src, str) and storage.is_url(src):
        src = Remote(src)
    elif isinstance(src, str):
        src = storage.local(src)
    if isinstance(src, Remote):
        remote = src
        display = storage.display(src.url)
        raw, size = _open_remote(src, display)
        owned.append(raw)
    elif isinstance(src, (str, os.PathLike)) and os.fspath(src) == "-":
        raw: IO[bytes] = sys.stdin.buffer
        display = name or "stdin"
    elif isinstance(src, (str, os.PathLike)):
        path = Path(src)
        display = os.fspath(src)
        try:
            raw = path.open("rb")
        except FileNotFoundError:
            raise InputError("no such file", source=display) from None
        except IsADirectoryError:
            raise InputError("is a directory", source=display) from None
        except OSError as exc:
            raise InputError(f"cannot open: {exc.strerror or exc}", source=display) from None
        owned.append(raw)
        try:
            size = os.fstat(raw.fileno()).st_size
        except OSError:
            size = None
    elif hasattr(src, "read"):
        raw = src  # type: ignore[assignment]
        display = name or getattr(src, "name", None) or "stream"
        if not isinstance(display, str):
            display = "stream"
    else:
        raise TypeError(f"cannot read from {type(src).__name__}")
    try:
        stream, compressed, encoding = _open_bytes(raw, display)
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        for handle in owned:
            handle.close()
        raise InputError(f"the compressed input is truncated or corrupt ({exc})",
                         source=display, where="byte 0") from None
    except OSError as exc:
        for handle in owned:
            handle.close()
        raise InputError(f"cannot read: {exc}", source=display) from None
    stem = name or stem_of(remote.url if remote is not None else display)
    return Source(display, stem, stream, path, size, compressed, encoding, owned, remote)
