"""Object stores and web servers, through fsspec: which names are URLs, the file system that
serves each, and the few operations inputs and outputs need (open a stream, list a prefix,
modification times, uploads that stay invisible until completed), their failures said in one
line with no credential in it.

Credentials come the usual way (each library's environment variables and profiles:
``AWS_ENDPOINT_URL`` for S3-compatible stores) or from ``storage_options``, the keyword
arguments of the protocol's fsspec file system (``--storage-option KEY=VALUE``).  fsspec is a
base dependency; each protocol's package is an extra, named when it is missing.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

from .errors import OutputError, UsageError

# scheme -> the extra that installs its fsspec implementation
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure",
          "abfss": "azure", "http": "http", "https": "http"}
WEB = ("http", "https")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+)://")
READ_BLOCK = 8 << 20  # bytes per ranged read: the read-ahead that an object's stream holds
PART_SIZE = 8 << 20  # bytes per multipart part (S3's minimum is 5 MiB)
STALL_SECONDS = 60.0  # a web server that sends nothing this long is given up (as for fetch)
MAX_DOWNLOAD_MB = 2048  # the largest web input read (as --max-download-mb for fetch)
# storage option names that hold a secret: they never travel to a cluster's workers, and
# their values are cut out of any message
_SECRET = re.compile(r"key|secret|token|password|passwd|credential|sas|signature|connection",
                     re.IGNORECASE)


def scheme(name: object) -> str | None:
    """The URL scheme of ``name`` (``s3``, ``https``, ...) in lower case, None for a path."""
    match = _SCHEME.match(name) if isinstance(name, str) else None
    return match.group(1).lower() if match else None


def is_url(name: object) -> bool:
    """True for a URL this package reads or writes through fsspec (``file://`` is a path);
    ``UsageError`` for a scheme it does not know."""
    found = scheme(name)
    if found is None or found == "file":
        return False
    if found not in EXTRAS:
        raise UsageError(f"{display(str(name))}: unsupported URL scheme {found}:// (supported: "
                         "s3://, gs://, az://, abfs://, http(s)://, file://)")
    return True


def local(name: str) -> str:
    """A ``file://`` URL as its path; anything else as it is."""
    if scheme(name) == "file":
        parts = urlsplit(name)
        return parts.path or "/"
    return name


def display(url: str) -> str:
    """``url`` as messages and reports show it: no user or password, and no query (a signed
    URL's query is its credential)."""
    if scheme(url) is None:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "..." if parts.query else "", ""))


def url_stem_name(url: str) -> str:
    """The last part of a URL's path (what names its outputs), without the query."""
    return posixpath.basename(urlsplit(url).path.rstrip("/"))


class ObjectPath:
    """A place in an object store, ``s3://bucket/key``: the part of ``pathlib`` the output
    rules use (``/``, ``name``, ``suffix``, ``parent``, ``relative_to``); ``str()`` is the URL.
    The bucket is its root (its ``parent`` is itself)."""

    __slots__ = ("protocol", "key")

    def __init__(self, url: str | ObjectPath, key: PurePosixPath | None = None) -> None:
        if isinstance(url, ObjectPath):
            self.protocol, self.key = url.protocol, key if key is not None else url.key
            return
        found = scheme(url)
        if found is None or found in WEB:
            raise UsageError(f"{display(url)}: outputs go to a folder or an object store "
                             "(s3://, gs://, az://), not to a web server")
        self.protocol = found
        self.key = key if key is not None else PurePosixPath(url[len(found) + 3:].strip("/"))

    def __str__(self) -> str:
        return f"{self.protocol}://{self.key}"

    def __repr__(self) -> str:
        return f"ObjectPath({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def __lt__(self, other: ObjectPath) -> bool:  # sorted like paths: part by part
        return (self.protocol, self.key.parts) < (other.protocol, other.key.parts)

    def __truediv__(self, part: str | PurePosixPath) -> ObjectPath:
        return ObjectPath(self, self.key / part)

    @property
    def name(self) -> str:
        return self.key.name

    @property
    def suffix(self) -> str:
        return self.key.suffix

    @property
    def parent(self) -> ObjectPath:
        return self if len(self.key.parts) <= 1 else ObjectPath(self, self.key.parent)

    @property
    def bucket(self) -> str:
        return self.key.parts[0] if self.key.parts else ""

    def relative_to(self, other: ObjectPath) -> PurePosixPath:
        return self.key.relative_to(other.key)

    def resolve(self) -> ObjectPath:
        return self


Location = Path | ObjectPath


def location(name: str | Path | ObjectPath) -> Location:
    """A local folder or file as a ``Path``, a URL (``file://`` excepted) as an ``ObjectPath``."""
    if isinstance(name, (Path, ObjectPath)):
        return name
    return ObjectPath(name) if is_url(name) else Path(local(name))


@dataclass(frozen=True)
class Remote:
    """An input URL with the storage options to open it with (what ``open_source`` takes)."""

    url: str
    options: Mapping[str, Any] = field(default_factory=dict, repr=False)  # may hold secrets

    def __str__(self) -> str:
        return display(self.url)


def parse_option(given: str) -> tuple[str, Any]:
    """``KEY=VALUE`` from ``--storage-option``: VALUE as JSON when it parses, else the string.
    The value is never repeated in an error (it may be a secret)."""
    key, sep, value = given.partition("=")
    if not sep:
        raise UsageError(f"--storage-option takes KEY=VALUE, not {given!r}")
    if not key.strip():
        raise UsageError("--storage-option takes KEY=VALUE; the KEY is missing")
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def check_options(options: object) -> dict[str, Any]:
    """``storage_options`` as a plain dict with string keys, else ``UsageError``."""
    if options is None:
        return {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise UsageError("storage_options must be a dict with string keys")
    return dict(options)


def secret_keys(options: Mapping[str, Any]) -> list[str]:
    """The keys of ``options`` (nested ones too) that name a credential."""
    found = []
    for key, value in options.items():
        if _SECRET.search(key):
            found.append(key)
        elif isinstance(value, Mapping):
            found.extend(f"{key}.{k}" for k in secret_keys(value))
    return found


def refuse_secrets(options: Mapping[str, Any]) -> None:
    """``UsageError`` when ``options`` hold a credential: they are about to travel to another
    machine (a cluster's workers, which use their own environment and profiles)."""
    found = secret_keys(options)
    if found:
        raise UsageError(f"storage option {found[0]} is a credential and would travel to the "
                         "cluster's workers; give the workers their own (environment "
                         "variables or a profile) and leave it out")


def _secret_values(options: Mapping[str, Any]) -> Iterable[str]:
    for key, value in options.items():
        if isinstance(value, Mapping):
            yield from _secret_values(value)
        elif _SECRET.search(key) and isinstance(value, str) and len(value) >= 4:
            yield value


def redact(text: str, options: Mapping[str, Any] | None = None) -> str:
    """``text`` without any secret value of ``options`` and without signed-URL queries."""
    for secret in _secret_values(options or {}):
        text = text.replace(secret, "***")
    return re.sub(r"(https?://[^\s?#]*)\?\S*", r"\1?...", text)


def filesystem(url: str, options: Mapping[str, Any] | None = None) -> tuple[Any, str]:
    """The fsspec file system for ``url`` and the path in it; a missing package is a
    ``UsageError`` naming the extra that installs it."""
    found = scheme(url) or "file"
    kwargs = dict(options or {})
    if found in WEB:
        kwargs.pop("stall_timeout", None)
        kwargs.pop("max_download_mb", None)
    try:
        import fsspec

        fs, path = fsspec.core.url_to_fs(url, **kwargs)
    except ImportError:
        extra = EXTRAS.get(found, found)
        raise UsageError(f"{found}:// needs its fsspec package: pip install "
                         f"'xparse-convert[{extra}]'") from None
    except (TypeError, ValueError) as exc:
        raise UsageError(f"{display(url)}: bad storage options: {redact(str(exc), options)}"
                         ) from None
    return fs, path


def describe(exc: BaseException, options: Mapping[str, Any] | None = None) -> str:
    """What a storage failure means, in one line, with no credential in it."""
    status = getattr(exc, "status", None)  # aiohttp's ClientResponseError
    if isinstance(status, int):
        return f"the server answered HTTP {status}"
    if isinstance(exc, FileNotFoundError):
        text = str(exc)
        return "no such bucket" if "bucket" in text.lower() else "no such object"
    if isinstance(exc, PermissionError):
        return ("access denied (check the credentials: environment variables, profile or "
                "--storage-option)")
    if isinstance(exc, TimeoutError):
        return "the server stopped sending (timed out)"
    name = type(exc).__name__
    if "Credentials" in name:
        return ("no credentials found (set the environment variables or a profile, or "
                "--storage-option)")
    text = (str(exc).strip().splitlines() or [""])[0]
    return redact(f"{text} ({name})" if text else name, options)[:300]


def open_input(url: str, options: Mapping[str, Any] | None = None
               ) -> tuple[IO[bytes], int | None]:
    """A stream of the object at ``url`` and its size when known.  Objects are read in
    ranges of ``READ_BLOCK`` bytes, one block ahead; web inputs as one streamed GET,
    given up after ``stall_timeout`` seconds without data (default 60).  Raises what the
    file system raises (``describe`` says it)."""
    options = dict(options or {})
    if scheme(url) in WEB:
        import aiohttp

        stall = float(options.get("stall_timeout", STALL_SECONDS))
        client = dict(options.get("client_kwargs") or {})
        client.setdefault("timeout", aiohttp.ClientTimeout(total=None, sock_connect=stall,
                                                           sock_read=stall))
        fs, path = filesystem(url, {**options, "client_kwargs": client})
        # block_size 0: one streamed GET (a signed URL may refuse HEAD and ranges); size -1
        # keeps fsspec from asking for the size first
        return fs.open(path, "rb", block_size=0, size=-1), None
    fs, path = filesystem(url, options)
    handle = fs.open(path, "rb", block_size=READ_BLOCK, cache_type="readahead")
    return handle, getattr(handle, "size", None)


def max_download_bytes(options: Mapping[str, Any] | None) -> int:
    """The most bytes a web input may send (``max_download_mb`` in its storage options)."""
    return int(float((options or {}).get("max_download_mb", MAX_DOWNLOAD_MB)) * (1 << 20))


def info(url: str | ObjectPath, options: Mapping[str, Any] | None = None
         ) -> dict[str, Any] | None:
    """fsspec's ``info`` for ``url``; None when there is nothing there."""
    fs, path = filesystem(str(url), options)
    fs.invalidate_cache(path)  # fsspec keeps listings: another run may have written since
    try:
        return fs.info(path)
    except FileNotFoundError:
        return None


def modified(url: str | ObjectPath, options: Mapping[str, Any] | None = None) -> float | None:
    """When the object at ``url`` was last written (seconds since the epoch), None when it is
    not there or the store does not say."""
    found = info(url, options)
    if found is None:
        return None
    for key in ("LastModified", "last_modified", "mtime", "updated", "modified"):
        value = found.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return None


def is_prefix(url: str, options: Mapping[str, Any] | None = None) -> bool:
    """True when ``url`` names a folder of objects (ends in ``/``, or has objects below it and
    is no object itself)."""
    if url.endswith("/"):
        return True
    if scheme(url) in WEB:
        return False
    try:
        found = info(url, options)
    except UsageError:
        raise
    except Exception:  # denied, unreachable: opening it as an object says why, in one line
        return False
    return found is not None and found.get("type") == "directory"


def find(url: str, suffixes: tuple[str, ...], options: Mapping[str, Any] | None = None
         ) -> list[str]:
    """The URLs of every object below the prefix ``url`` whose name ends in one of
    ``suffixes`` (case-insensitive), sorted."""
    fs, path = filesystem(url, options)
    fs.invalidate_cache(path.rstrip("/"))
    try:
        keys = fs.find(path.rstrip("/") + "/")
    except FileNotFoundError:
        return []
    proto = scheme(url)
    return sorted(f"{proto}://{k}" for k in keys if k.lower().endswith(suffixes))


def heads(urls: list[str], size: int, options: Mapping[str, Any] | None = None
          ) -> list[bytes]:
    """The first ``size`` bytes of each object, fetched concurrently (one request each)."""
    if not urls:
        return []
    fs, _ = filesystem(urls[0], options)
    paths = [filesystem(u, options)[1] for u in urls]
    found = fs.cat_ranges(paths, [0] * len(paths), [size] * len(paths), on_error="return")
    return [b if isinstance(b, bytes) else b"" for b in found]


def check_writable(target: ObjectPath, options: Mapping[str, Any] | None = None) -> None:
    """Raise ``OutputError`` when the bucket of ``target`` is missing or cannot be reached
    (checked before any work starts)."""
    fs, _ = filesystem(str(target), options)
    try:
        fs.ls(target.bucket, detail=False)  # raises what exists() would hide
    except FileNotFoundError:
        raise OutputError(f"no such bucket {target.bucket!r}") from None
    except Exception as exc:  # the store's own errors: say them in one line
        raise OutputError(describe(exc, options)) from None


def names_in(folder: ObjectPath, options: Mapping[str, Any] | None = None) -> set[str]:
    """The names of the objects directly in ``folder``."""
    fs, path = filesystem(str(folder), options)
    fs.invalidate_cache(path)
    try:
        return {posixpath.basename(p.rstrip("/")) for p in fs.ls(path, detail=False)}
    except FileNotFoundError:
        return set()


class PendingUpload:
    """``local`` uploaded to ``target`` and not yet visible: a multipart upload whose parts are
    all sent, until ``complete`` makes the object appear whole or ``abort`` drops it.  A
    failure while sending aborts it."""

    def __init__(self, local: Path, target: ObjectPath,
                 options: Mapping[str, Any] | None = None) -> None:
        self.target = target
        self._options = options
        fs, path = filesystem(str(target), options)
        self._file: Any = None
        try:
            self._file = fs.open(path, "wb", autocommit=False, block_size=PART_SIZE)
            with open(local, "rb") as source:
                while True:
                    chunk = source.read(1 << 20)
                    if not chunk:
                        break
                    self._file.write(chunk)
            self._file.close()  # sends the last part; completing is ``complete``'s
        except BaseException as exc:
            self.abort()
            if isinstance(exc, Exception):
                raise OutputError(f"cannot upload {target}: {describe(exc, options)}") from None
            raise

    def complete(self) -> None:
        """Make the object appear, whole."""
        try:
            self._file.commit()
        except Exception as exc:
            self.abort()
            raise OutputError(f"cannot complete {self.target}: {describe(exc, self._options)}"
                              ) from None
        self._file = None

    def abort(self) -> None:
        """Drop the upload (its parts are deleted).  Never raises."""
        if self._file is None:
            return
        try:
            self._file.discard()
        except Exception:  # the store went away: its lifecycle rule cleans up (README)
            pass
        self._file = None


def upload(local: Path, target: ObjectPath, options: Mapping[str, Any] | None = None) -> None:
    """``local`` to ``target``, appearing whole or not at all."""
    PendingUpload(local, target, options).complete()


def put_files(files: list[tuple[Path, ObjectPath]], options: Mapping[str, Any] | None = None
              ) -> None:
    """Small files as whole objects (one request each); on failure those already put are
    deleted again and ``OutputError`` says why."""
    done: list[ObjectPath] = []
    fs = None
    try:
        for path, target in files:
            fs, key = filesystem(str(target), options)
            fs.put_file(str(path), key)
            done.append(target)
    except BaseException as exc:
        if fs is not None and done:
            try:
                fs.rm([filesystem(str(t), options)[1] for t in done])
            except Exception:
                pass
        if isinstance(exc, Exception):
            raise OutputError(f"cannot upload {files[len(done)][1]}: "
                              f"{describe(exc, options)}") from None
        raise
