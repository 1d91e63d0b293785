"""Pictures: what each ``--images`` mode makes of a picture (one rule, ``place``, that every
writer renders its own way), the checks a picture passes before it is written, and the one
URL policy.

Only real raster pictures are written, whatever the mime type claims: the bytes are opened with
Pillow, must be one of the formats below, must fit under the pixel cap (``--max-image-pixels``)
and must decode (``load()``) before anything embeds them or writes them to ``<stem>_files/``.
A header may claim any size and a few bytes may hold a huge picture (a one-colour lossless WebP
of 13000x13000 pixels takes 30 bytes and 700 MB decoded), so the size is checked before any
pixel is decoded.  A JPEG above the cap is decoded at 1/2, 1/4 or 1/8 of its size (Pillow's
``draft``, which scales in the decoder); any other format above it is left out.
"""

from __future__ import annotations

import base64
import binascii
import io
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from .values import is_int

# Pillow format name -> (file extension, mime type)
RASTER_FORMATS: dict[str, tuple[str, str]] = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "WEBP": ("webp", "image/webp"),
}

# The default of ``--max-image-pixels``: 40 Mpx decode to at most 160 MB (RGBA), and a page
# scanned at 600 dpi (A4: 35 Mpx) still fits.
DEFAULT_MAX_PIXELS = 40_000_000

# What a writer does with a picture (``Placement.action``).
EMBED = "embed"      # the bytes go inside the output (a data: URI, a DOCX media part)
FILE = "file"        # the bytes go to <stem>_files/ and the output points there
LOAD = "load"        # the output loads the picture from its source URL when it is opened
LINK = "link"        # a link the reader can click; nothing is fetched when the output opens
MISSING = "missing"  # no usable picture: a short note where it was (a warning said why)
NONE = "none"        # left out on request (--images none); captions stay

# What a page's Content-Security-Policy ``img-src`` allows under each mode: exactly what the
# mode's placements need (files: the relative <stem>_files/ links, which a page opened from
# disk resolves to file: URLs).
IMG_SRC: dict[str, str] = {
    "embed": "data:",
    "files": "data: 'self' file:",
    "url": "data: http: https:",
    "none": "'none'",
}

Warn = Callable[[str, str], None]  # (kind, message) -> None


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int

    @property
    def extension(self) -> str:
        return RASTER_FORMATS[self.format][0]

    @property
    def mime_type(self) -> str:
        return RASTER_FORMATS[self.format][1]


@dataclass(frozen=True)
class Placement:
    """What to write for one picture: ``action`` is one of the constants above; ``data`` and
    ``info`` are set for EMBED and FILE (bytes that were checked), ``url`` for LOAD and LINK
    (a URL that passed ``safe_url``)."""

    action: str
    data: bytes | None = None
    info: ImageInfo | None = None
    url: str | None = None

    @property
    def data_uri(self) -> str:
        assert self.data is not None and self.info is not None
        return f"data:{self.info.mime_type};base64,{base64.b64encode(self.data).decode('ascii')}"


def sniff(data: bytes) -> ImageInfo | None:
    """The format and declared pixel size of ``data`` if it is a supported raster format,
    else None.  Reads the header only: nothing is decoded, nothing is checked against a cap."""
    if not data:
        return None
    from PIL import Image  # imported on first use: most conversions never see a picture

    size = declared_size(data)
    if size is not None and data[:4] == b"RIFF":  # no Pillow: it would reserve the canvas
        return ImageInfo("WEBP", *size) if size[0] > 0 and size[1] > 0 else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a header read only; ``verify`` reports what matters
        try:
            with Image.open(io.BytesIO(data)) as img:
                fmt = img.format
                width, height = img.size
        except Exception:  # Pillow raises many types for junk; all mean "not an image"
            return None
    fmt = _format(fmt)
    if fmt not in RASTER_FORMATS or width <= 0 or height <= 0:
        return None
    return ImageInfo(fmt, width, height)


def declared_size(data: bytes) -> tuple[int, int] | None:
    """The pixel size a PNG, GIF, BMP or WebP header declares, read from the bytes without
    Pillow (whose WebP decoder reserves the whole canvas when it opens a file, and which
    refuses sizes far above its own limit before saying what they are); None for others."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data[:2] == b"BM" and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":  # canvas size, 24 bits each, minus one
        return (int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1)
    if chunk == b"VP8L" and data[20] == 0x2F:  # 14 bits each, minus one
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":  # 14 bits each, 2 of scale
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _format(name: str | None) -> str | None:
    """Pillow's format name; MPO (a camera JPEG holding a second view) is a JPEG to every
    reader."""
    return "JPEG" if name == "MPO" else name


def verify(data: bytes, max_pixels: int, warn: Warn
           ) -> tuple[bytes, ImageInfo, bool] | str:
    """``(bytes, info, reduced)`` for a picture that may be written (``reduced``: a JPEG above
    the cap, decoded and re-encoded at a fraction of its size), else the reason it may not.
    Pillow's own warnings go to ``warn``, never to stderr."""
    from PIL import Image

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = _verify(data, max_pixels)
        except Image.DecompressionBombError:
            result = (f"its declared size is above the decoder's own limit of "
                      f"{2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels")
        except Exception:  # Pillow raises many types for bad data; all mean "does not decode"
            result = "its bytes do not decode as a picture"
    for item in caught:
        # our cap, checked before any decoding, stands in for Pillow's bomb warning
        if not issubclass(item.category, Image.DecompressionBombWarning):
            warn("image-decoder", f"picture decoder: {item.message}")
    return result


def _verify(data: bytes, max_pixels: int) -> tuple[bytes, ImageInfo, bool] | str:
    from PIL import Image

    if data.lstrip()[:1] == b"<" and b"<svg" in data[:4096].lower():
        return "SVG pictures are not written (they can carry scripts and remote loads)"
    size = declared_size(data)
    if size is not None and size[0] * size[1] > max_pixels:
        return (f"its {size[0]}x{size[1]} pixels are above the {max_pixels:,}-pixel cap "
                "(--max-image-pixels)")
    try:
        img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise
    except Exception:
        return "its bytes are not a picture"
    with img:
        fmt, (width, height) = _format(img.format), img.size
        if fmt not in RASTER_FORMATS:
            return f"{fmt} pictures are not written"
        if width <= 0 or height <= 0:
            return "it declares no pixels"
        if width * height <= max_pixels:
            img.load()  # every pixel decodes, under the cap
            return data, ImageInfo(fmt, width, height), False
        over = (f"its {width}x{height} pixels are above the {max_pixels:,}-pixel cap "
                "(--max-image-pixels)")
        if fmt != "JPEG":
            return over
        scale = next((s for s in (2, 4, 8) if -(-width // s) * -(-height // s) <= max_pixels),
                     None)
        if scale is None or img.draft(img.mode, (max(width // scale, 1),
                                                 max(height // scale, 1))) is None \
                or img.width * img.height > max_pixels:  # draft has set the reduced size
            return over + ", even at 1/8 of its size"
        img.load()
        out = io.BytesIO()
        img.save(out, format="JPEG", quality=90)
        return out.getvalue(), ImageInfo("JPEG", img.width, img.height), True


class ImageRef:
    """An element's picture as the input gave it: a URL, a mime type, base64 text, and the
    size the metadata claims.  ``data()``/``info()`` decode and sniff on demand; ``place``
    checks the picture once per conversion and remembers the verdict, not the bytes."""

    __slots__ = ("url", "mime_type", "_b64", "meta_width", "meta_height", "_decoded",
                 "_verdict", "_warned")

    def __init__(self, url: str | None, mime_type: str | None, b64: str | None,
                 meta_width: int | None = None, meta_height: int | None = None) -> None:
        self.url = url
        self.mime_type = mime_type
        self._b64 = b64
        self.meta_width = meta_width
        self.meta_height = meta_height
        self._decoded: tuple[bytes, ImageInfo | None] | None = None
        # (cap, ImageInfo) once the bytes passed ``verify`` unchanged under that cap;
        # (cap, None) once they failed it (the reason was warned)
        self._verdict: tuple[int, ImageInfo | None] | None = None
        self._warned = False

    @property
    def has_data(self) -> bool:
        return bool(self._b64)

    def _bytes(self) -> tuple[bytes, ImageInfo | None]:
        if self._decoded is None:
            raw = self._b64 or ""
            if raw.startswith("data:") and "," in raw[:200]:
                raw = raw.split(",", 1)[1]
            try:
                data = base64.b64decode(raw, validate=False)
            except (binascii.Error, ValueError):
                data = b""
            self._decoded = (data, sniff(data))
        return self._decoded

    def data(self) -> bytes | None:
        """The bytes when their header is a supported raster format (not yet verified)."""
        data, info = self._bytes()
        return data if info is not None else None

    def info(self) -> ImageInfo | None:
        """Format and declared size from the header, or None."""
        return self._bytes()[1]

    def release(self) -> None:
        """Forget decoded bytes (keeps memory flat once a picture is written)."""
        self._decoded = None

    @property
    def safe_url(self) -> str | None:
        """The picture's URL if ``safe_url`` lets it through."""
        return safe_url(self.url)

    def checked(self, max_pixels: int, warn: Warn) -> tuple[bytes, ImageInfo] | None:
        """Bytes that may be written under ``max_pixels``, or None (with a warning, once)."""
        if self._verdict is not None and self._verdict[0] == max_pixels:
            info = self._verdict[1]
            if info is None:
                return None
            data = self._bytes()[0]
            self.release()
            return data, info
        data = self._bytes()[0]
        self.release()
        result = verify(data, max_pixels, warn) if data else "its base64 text holds no bytes"
        if isinstance(result, str):
            self._verdict = (max_pixels, None)
            warn("image-left-out", f"picture left out: {result}")
            return None
        data, info, reduced = result
        if reduced:  # not remembered: decoding at reduced size again is cheaper than keeping it
            warn("image-reduced", f"picture decoded at reduced size ({info.width}x"
                 f"{info.height}): it is above the {max_pixels:,}-pixel cap "
                 "(--max-image-pixels)")
        else:
            self._verdict = (max_pixels, info)
        return data, info


def place(ref: ImageRef | None, mode: str, *, max_pixels: int | None = None,
          warn: Warn | None = None) -> Placement:
    """What the ``--images`` mode makes of a picture, for every writer (the README's picture
    table):

    * ``none``: NONE.
    * ``embed``/``files``: a picture whose bytes pass ``verify`` is EMBED/FILE; otherwise a
      safe source URL becomes a LINK (never loaded when the output opens), else MISSING.
    * ``url``: a safe source URL is LOADed; a picture with bytes but no usable URL is embedded
      (with a warning) rather than dropped; else MISSING.

    ``warn(kind, message)`` hears why a picture was left out, reduced or refused, once per
    picture however many writers place it."""
    if mode == "none":
        return Placement(NONE)
    if ref is None:
        return Placement(MISSING)
    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    said = ref._warned

    def once(kind: str, message: str) -> None:
        ref._warned = True
        if warn is not None and not said:
            warn(kind, message)

    url = ref.safe_url
    if mode == "url" and url:
        return Placement(LOAD, url=url)
    if ref.has_data:
        checked = ref.checked(max_pixels, once)
        if checked is not None:
            if mode == "url":
                once("image-no-url", "picture has no usable source URL for --images url; "
                     "embedded instead")
                return Placement(EMBED, *checked)
            return Placement(FILE if mode == "files" else EMBED, *checked)
    if url:
        return Placement(LOAD if mode == "url" else LINK, url=url)
    if ref.url and not ref.has_data:  # with data, the warning above said why
        once("image-url", "picture URL refused by the URL policy (only http and https, "
             "without spaces, control or bidi characters)")
    return Placement(MISSING)


# Characters that could end a URL early in Markdown, HTML or XML.
_URL_FORBIDDEN = frozenset('"<>\\ ()[]{}`\'')
# Bidi controls: they make a URL display as something else than it is.
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _refused(ch: str) -> bool:
    o = ord(ch)
    return (o < 0x20 or 0x7F <= o <= 0x9F or ch in _URL_FORBIDDEN or ch in _BIDI
            or ch.isspace() or 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF))


def safe_url(url: str | None) -> str | None:
    """The one URL policy of every writer: an absolute http(s) URL with a host, without C0 or
    C1 controls, spaces, bidi controls or characters that could end it early in Markdown,
    HTML or XML, passes; anything else (javascript:, vbscript:, data:, file:, relative paths)
    is None.  Pictures become ``data:`` URIs only from bytes that passed ``verify``."""
    if not url or not isinstance(url, str):
        return None
    url = url.strip(" \t\r\n")
    if not url.lower().startswith(("http://", "https://")) or any(map(_refused, url)):
        return None
    try:
        if not urlsplit(url).netloc:
            return None
    except ValueError:  # a malformed IPv6 host
        return None
    return url


def image_ref_from(image_data: Any, metadata: dict[str, Any]) -> ImageRef | None:
    """Build an ImageRef from an element's ``image_data`` (object) or a cell's
    ``image_datas`` (array: the first usable entry).  None when there is nothing."""
    if isinstance(image_data, list):
        image_data = next((d for d in image_data if isinstance(d, dict)), None)
    width = metadata.get("width")
    height = metadata.get("height")
    width = width if is_int(width) else None
    height = height if is_int(height) else None
    if not isinstance(image_data, dict):
        return None
    url = image_data.get("image_url")
    mime = image_data.get("mime_type")
    b64 = image_data.get("base64")
    ref = ImageRef(url if isinstance(url, str) else None, mime if isinstance(mime, str) else None,
                   b64 if isinstance(b64, str) else None, width, height)
    if not ref.url and not ref.has_data:
        return None
    return ref
