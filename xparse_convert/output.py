"""Outputs that appear whole or not at all: every file is written beside its target under a
temporary name and renamed into place only when the whole conversion succeeded.  An output
in an object store (``s3://...``) is written to a local staging folder the same way, then
uploaded as a multipart upload that is completed only when every output of its input has
been sent (``OutputSet.commit``).

Temporary names are ``.<target name>.<host>.<pid>.<random>.tmp``: a process killed with
``kill -9`` cannot clean up after itself, so the name says whose a leftover was, and the next
run into the folder removes it once that process is gone (``remove_stale_temporaries``).
"""

from __future__ import annotations

import glob
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import string
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import quote

from . import storage
from .errors import OutputError
from .storage import ObjectPath, PendingUpload
from .writers import Assets

log = logging.getLogger("xparse_convert")

# the host part of temporary names: one label, no dots, so the name parses from the right
HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "localhost"
STALE_AFTER = 24 * 3600.0  # seconds; a leftover this old is stale whoever made it
_RANDOM = string.ascii_lowercase + string.digits
_TEMPORARY = re.compile(
    r"\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>[0-9]{1,10})\.[a-z0-9_]{8}\.tmp")


def temporary_name(target: Path, pid: int | None = None) -> str:
    """The temporary name for ``target`` made by process ``pid`` (default: this one); with
    ``pid`` given and no random part, the glob that finds that process's leftovers."""
    if pid is not None:
        return f".{target.name}.{HOST}.{pid}.????????.tmp"
    random = "".join(secrets.choice(_RANDOM) for _ in range(8))
    return f".{target.name}.{HOST}.{os.getpid()}.{random}.tmp"


def staging_folder() -> Path:
    """Where outputs bound for an object store are written before they are uploaded: one
    private folder per user in the system's temporary folder (its leftovers from killed
    runs are removed like any other folder's, by ``remove_stale_temporaries``)."""
    folder = Path(tempfile.gettempdir()) / f"xparse-convert-staging-{os.getuid()}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _remote(target: object) -> ObjectPath | None:
    if isinstance(target, ObjectPath):
        return target
    if isinstance(target, str) and storage.is_url(target):
        return ObjectPath(target)
    return None


def _create(target: Path, directory: bool) -> Path:
    """A new temporary file or folder beside ``target``, created with the mode of any new
    file (0o666 or 0o777, less the umask; mkstemp's private 0600 is wrong for outputs)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(100):
        temp = target.parent / temporary_name(target)
        try:
            if directory:
                os.mkdir(temp, 0o777)
            else:
                os.close(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return temp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {target}")


class AtomicFile:
    """A file that appears at ``target`` whole or not at all: written under a temporary name
    in the same folder (a rename never crosses file systems), flushed to disk, then renamed
    over the target; its mode is 0o666 less the umask, like every other new file.

    Use it as a context manager (the file is committed when the block ends normally and
    removed when it raises), or call ``commit``/``abort``.  ``temp`` is the temporary path,
    for checking what was written before it is committed.  A URL target (``s3://...``) is
    written to the local staging folder and uploaded by ``commit`` (``storage_options``: the
    store's fsspec options).
    """

    def __init__(self, target: str | os.PathLike[str] | ObjectPath, binary: bool = True,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        self.remote = _remote(target)
        self.storage_options = storage_options
        self.target: Path | ObjectPath = self.remote or Path(target)  # type: ignore[arg-type]
        self.temp = _create(staging_folder() / self.remote.name if self.remote else
                            self.target, directory=False)  # type: ignore[arg-type]
        self.file: IO[Any] = open(self.temp, "wb") if binary else open(  # noqa: SIM115
            self.temp, "w", encoding="utf-8", newline="\n")

    def write(self, data: Any) -> int:
        return self.file.write(data)

    def close(self) -> None:
        """Flush and close the file (once; later calls do nothing).  No fsync: the rename is
        what makes an output whole or absent for every reader; surviving a power cut as
        well would cost a disk flush per output (a tenth of a second on 30 MB)."""
        if not self.file.closed:
            self.file.flush()
            self.file.close()

    def commit(self) -> None:
        """Close the file and rename it over the target (upload it, for a URL)."""
        if self.remote is not None:
            self.send().complete()
            return
        self.close()
        os.replace(self.temp, self.target)

    def send(self) -> PendingUpload:
        """Close the file and upload it to its URL, not yet completed: the object appears
        when the upload's ``complete`` is called.  The staged file is removed."""
        assert self.remote is not None
        self.close()
        try:
            return PendingUpload(self.temp, self.remote, self.storage_options)
        finally:
            self.temp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Remove the temporary file.  Never raises: it runs while another error is on its
        way out, and one output's failure must not keep the others from being removed."""
        try:
            self.file.close()
        except Exception:  # a failed flush on a full disk: the file is being deleted anyway
            pass
        try:
            self.temp.unlink()
        except OSError:
            pass

    def __enter__(self) -> AtomicFile:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if kind is not None:
            self.abort()
            return
        try:
            self.commit()
        except BaseException:
            self.abort()
            raise


def check_writable(target: str | os.PathLike[str] | ObjectPath,
                   storage_options: Mapping[str, Any] | None = None) -> None:
    """Raise ``OutputError`` when no file could be created at ``target`` (checked before any
    work starts, so an unwritable place fails at once, not after the work); for a URL, when
    its bucket is missing or cannot be reached."""
    remote = _remote(target)
    if remote is not None:
        storage.check_writable(remote, storage_options)
        return
    path = Path(target)  # type: ignore[arg-type]
    if path.is_dir():
        raise OutputError(f"cannot write {path}: a folder of that name is there")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # missing folders are created; the first existing one decides
    if not folder.is_dir():
        raise OutputError(f"cannot write {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"cannot write {path}: {folder} is not writable")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    except (OverflowError, ValueError, OSError):
        return False  # not a pid this system can have
    return True


def remove_temporaries(folder: Path | ObjectPath, names: Iterable[str], pid: int) -> None:
    """Remove what process ``pid`` on this host left beside ``names`` in ``folder`` (a worker
    that was killed before it could); for a folder in an object store, in the staging folder.
    (An upload it had begun stays unfinished, invisible, until the bucket's lifecycle rule
    removes it: see the README.)"""
    if isinstance(folder, ObjectPath):
        folder = staging_folder()
    for name in names:
        for leftover in folder.glob(temporary_name(folder / glob.escape(name), pid)):
            _remove(leftover)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(folders: Iterable[str | os.PathLike[str] | ObjectPath],
                             now: float | None = None) -> list[Path]:
    """Remove our temporary files that no process will finish: made on this host by a
    process that is gone, or older than ``STALE_AFTER`` whoever made them.  Nothing else is
    touched (other names, symbolic links, another host's recent files); says what it removed
    in one log line."""
    now = time.time() if now is None else now
    removed: list[Path] = []
    # a folder in an object store holds nothing temporary: its outputs stage locally
    for folder in dict.fromkeys(staging_folder() if _remote(f) else Path(f)  # type: ignore
                                for f in folders):
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            match = _TEMPORARY.fullmatch(entry.name)
            if match is None or entry.is_symlink():
                continue
            try:
                age = now - entry.stat(follow_symlinks=False).st_mtime
            except OSError:
                continue
            if age < STALE_AFTER and (match["host"] != HOST or _alive(int(match["pid"]))):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path)
                else:
                    os.unlink(entry.path)
            except OSError:
                continue
            removed.append(Path(entry.path))
    if removed:
        places = list(dict.fromkeys(str(p.parent) for p in removed))
        log.warning("note: removed %d temporary file%s left by an interrupted run in %s",
                    len(removed), "s" if len(removed) > 1 else "",
                    ", ".join(places[:3]) + (f" and {len(places) - 3} more" if len(places) > 3
                                             else ""))
    return removed


class AssetFolder(Assets):
    """``<stem>_files/``: created lazily under a temporary name, content-addressed so that two
    writers storing the same picture share one file."""

    def __init__(self, final: Path | ObjectPath,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        self.final = final
        self.storage_options = storage_options
        self._temp: Path | None = None
        self._names: set[str] = set()

    def add(self, data: bytes, extension: str) -> str:
        if self._temp is None:
            self._temp = _create(staging_folder() / self.final.name if isinstance(
                self.final, ObjectPath) else self.final, directory=True)
        name = f"img-{hashlib.sha1(data).hexdigest()[:16]}.{extension}"
        if name not in self._names:
            (self._temp / name).write_bytes(data)
            self._names.add(name)
        # a link, percent-encoded: a stem may hold spaces, '#', '?' or ':'
        return quote(f"{self.final.name}/{name}")

    @property
    def used(self) -> bool:
        return self._temp is not None

    def check(self) -> None:
        """Raise ``OutputError`` if the pictures could not be moved in.  A symbolic link is
        refused, not followed: pictures would land wherever it points."""
        if self._temp is None or isinstance(self.final, ObjectPath):
            return
        if self.final.is_symlink():
            raise OutputError(f"cannot write pictures to {self.final}: it is a symbolic link "
                              "(left as it is; remove it or choose another -o)")
        if self.final.exists() and not self.final.is_dir():
            raise OutputError(f"cannot write {self.final}: a file of that name is there")

    def commit(self) -> None:
        """Move the new pictures in.  An existing folder is added to, not replaced: another
        output of the same stem (an HTML page beside this Markdown) may link to its files,
        and names are content hashes, so a file of the same name has the same bytes."""
        if self._temp is None:
            return
        if isinstance(self.final, ObjectPath):
            # whole small objects; a name already there has the same bytes (content hashes)
            there = storage.names_in(self.final, self.storage_options)
            storage.put_files([(self._temp / n, self.final / n) for n in sorted(self._names)
                               if n not in there], self.storage_options)
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None
            return
        self.check()
        if not self.final.exists():
            os.replace(self._temp, self.final)
        else:
            for item in self._temp.iterdir():
                os.replace(item, self.final / item.name)
            shutil.rmtree(self._temp, ignore_errors=True)
        self._temp = None

    def abort(self) -> None:
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)
            self._temp = None


class OutputSet:
    """The outputs of one input: ``open`` gives a temporary file per target; ``commit`` renames
    them all into place (pictures folder first, so links never dangle); ``abort`` removes them.
    A target of ``None`` means standard output (no atomicity is possible there).  Targets in
    an object store are uploaded by ``commit``: every document sent as a multipart upload
    left open, then the pictures, then each upload completed."""

    def __init__(self, assets_dir: Path | ObjectPath,
                 storage_options: Mapping[str, Any] | None = None) -> None:
        self.assets = AssetFolder(assets_dir, storage_options)
        self.storage_options = storage_options
        self._files: list[AtomicFile] = []
        self._streams: list[IO[Any]] = []

    def open(self, target: Path | ObjectPath | None, binary: bool) -> IO[Any]:
        if target is None:
            stream: IO[Any] = sys.stdout.buffer if binary else _StdoutText()
            self._streams.append(stream)
            return stream
        try:
            output = AtomicFile(target, binary, self.storage_options)
        except OSError as exc:
            raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
        self._files.append(output)
        return output.file

    def commit(self) -> None:
        """Rename every output into place.  Targets that cannot be replaced (a folder of
        that name) are found first, so a failure changes nothing."""
        for output in self._files:
            if isinstance(output.target, Path) and output.target.is_dir():
                raise OutputError(f"cannot write {output.target}: a folder of that name is there")
        self.assets.check()
        for stream in self._streams:
            if isinstance(stream, _StdoutText):
                stream.flush()
        for output in self._files:
            output.close()
        sent: list[PendingUpload] = []
        try:
            for output in self._files:
                if output.remote is not None:
                    sent.append(output.send())
            self.assets.commit()  # pictures before the documents that link them
        except BaseException:
            for upload in sent:
                upload.abort()
            raise
        for output in self._files:
            if output.remote is None:
                output.commit()
        # each a single request: a failure here keeps the objects completed before it
        for index, upload in enumerate(sent):
            try:
                upload.complete()
            except BaseException:
                for later in sent[index + 1:]:
                    later.abort()
                raise
        self._files = []

    def abort(self) -> None:
        """Remove every temporary file and folder, whatever removing one of them raises."""
        try:
            for output in self._files:
                output.abort()
        finally:
            self._files = []
            self.assets.abort()


class _StdoutText:
    """Text output to stdout that never closes it."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()
