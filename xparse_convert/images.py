"""Pictures: decoding base64 only when a writer asks, and deciding what counts as an image.

Only real raster images count, whatever the mime type claims: the bytes are opened with
Pillow, which reads the header alone (no full decode), and must be one of the formats below.
"""

from __future__ import annotations

import base64
import binascii
import io
from dataclasses import dataclass
from typing import Any

# Pillow format name -> (file extension, mime type)
RASTER_FORMATS: dict[str, tuple[str, str]] = {
    "PNG": ("png", "image/png"),
    "JPEG": ("jpg", "image/jpeg"),
    "GIF": ("gif", "image/gif"),
    "BMP": ("bmp", "image/bmp"),
    "TIFF": ("tiff", "image/tiff"),
    "WEBP": ("webp", "image/webp"),
}

# Guard against decompression bombs announced in a header: a picture above this many pixels is
# refused rather than embedded.
MAX_PIXELS = 200_000_000


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


def sniff(data: bytes) -> ImageInfo | None:
    """The format and pixel size of ``data`` if it is a supported raster image, else None."""
    if not data:
        return None
    from PIL import Image  # imported on first use: most conversions never sniff a picture

    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            width, height = img.size
    except Exception:  # Pillow raises many types for junk; all mean "not an image"
        return None
    if fmt not in RASTER_FORMATS or width <= 0 or height <= 0 or width * height > MAX_PIXELS:
        return None
    return ImageInfo(fmt, width, height)


class ImageRef:
    """An element's picture as the input gave it: a URL, a mime type, base64 text, and the
    size the metadata claims.  ``data()``/``info()`` decode and sniff once, on demand."""

    __slots__ = ("url", "mime_type", "_b64", "meta_width", "meta_height", "_decoded")

    def __init__(self, url: str | None, mime_type: str | None, b64: str | None,
                 meta_width: int | None = None, meta_height: int | None = None) -> None:
        self.url = url
        self.mime_type = mime_type
        self._b64 = b64
        self.meta_width = meta_width
        self.meta_height = meta_height
        self._decoded: tuple[bytes, ImageInfo] | None | bool = False

    @property
    def has_data(self) -> bool:
        return bool(self._b64)

    def _decode(self) -> tuple[bytes, ImageInfo] | None:
        if self._decoded is False:
            self._decoded = None
            raw = self._b64
            if raw:
                if raw.startswith("data:") and "," in raw[:200]:
                    raw = raw.split(",", 1)[1]
                try:
                    data = base64.b64decode(raw, validate=False)
                except (binascii.Error, ValueError):
                    data = b""
                info = sniff(data)
                if info is not None:
                    self._decoded = (data, info)
        return self._decoded  # type: ignore[return-value]

    def data(self) -> bytes | None:
        """The image bytes when they are a real raster image, else None."""
        decoded = self._decode()
        return decoded[0] if decoded else None

    def info(self) -> ImageInfo | None:
        decoded = self._decode()
        return decoded[1] if decoded else None

    def release(self) -> None:
        """Forget decoded bytes (a writer that has written them keeps memory flat)."""
        self._decoded = False

    @property
    def safe_url(self) -> str | None:
        """The picture's URL if ``safe_url`` lets it through."""
        return safe_url(self.url)


_URL_FORBIDDEN = frozenset('"<>\\ \t\r\n()[]{}`\'')


def safe_url(url: str | None) -> str | None:
    """The one URL policy of every writer: an absolute http(s) URL without characters that
    could end it early in Markdown, HTML or XML passes; anything else (javascript:, vbscript:,
    data:, file:, relative paths) is None.  Pictures become ``data:`` URIs only from bytes
    that were sniffed as a raster image (``image_source``)."""
    if not url:
        return None
    url = url.strip()
    if url.lower().startswith(("http://", "https://")) and not _URL_FORBIDDEN & set(url):
        return url
    return None


def image_source(ref: ImageRef | None, mode: str, assets: Any) -> str | None:
    """Where a picture is for the ``--images`` mode: a ``data:`` URI (``embed``), a file in
    ``<stem>_files/`` (``files``), the source URL (``url``), nothing (``none``).  When the
    bytes are not a usable image, ``embed`` and ``files`` fall back to the safe URL."""
    if ref is None or mode == "none":
        return None
    if mode == "url":
        return ref.safe_url
    data, info = ref.data(), ref.info()
    if data is None or info is None:
        return ref.safe_url
    ref.release()
    if mode == "files":
        return assets.add(data, info.extension)
    return f"data:{info.mime_type};base64,{base64.b64encode(data).decode('ascii')}"


def image_ref_from(image_data: Any, metadata: dict[str, Any]) -> ImageRef | None:
    """Build an ImageRef from an element's ``image_data`` (object) or a cell's
    ``image_datas`` (array: the first usable entry).  None when there is nothing."""
    if isinstance(image_data, list):
        image_data = next((d for d in image_data if isinstance(d, dict)), None)
    width = metadata.get("width")
    height = metadata.get("height")
    width = width if isinstance(width, int) and not isinstance(width, bool) else None
    height = height if isinstance(height, int) and not isinstance(height, bool) else None
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
