"""Outputs that appear whole or not at all: every file is written beside its target under a
temporary name and renamed into place only when the whole conversion succeeded."""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from .errors import OutputError
from .writers import Assets


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _default_mode(path: str | Path, directory: bool) -> None:
    """mkstemp/mkdtemp create private files; outputs get the permissions of any new file."""
    os.chmod(path, (0o777 if directory else 0o666) & ~_umask())


class AssetFolder(Assets):
    """``<stem>_files/``: created lazily under a temporary name, content-addressed so that two
    writers storing the same picture share one file."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self._temp: Path | None = None
        self._names: set[str] = set()

    def add(self, data: bytes, extension: str) -> str:
        if self._temp is None:
            self.final.parent.mkdir(parents=True, exist_ok=True)
            self._temp = Path(tempfile.mkdtemp(prefix=f".{self.final.name}.", suffix=".tmp",
                                               dir=self.final.parent))
            _default_mode(self._temp, directory=True)
        name = f"img-{hashlib.sha1(data).hexdigest()[:16]}.{extension}"
        if name not in self._names:
            (self._temp / name).write_bytes(data)
            self._names.add(name)
        # a link, percent-encoded: a stem may hold spaces, '#', '?' or ':'
        return quote(f"{self.final.name}/{name}")

    @property
    def used(self) -> bool:
        return self._temp is not None

    def commit(self) -> None:
        """Move the new pictures in.  An existing folder is added to, not replaced: another
        output of the same stem (an HTML page beside this Markdown) may link to its files,
        and names are content hashes, so a file of the same name has the same bytes."""
        if self._temp is None:
            return
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
    A target of ``None`` means standard output (no atomicity is possible there)."""

    def __init__(self, assets_dir: Path) -> None:
        self.assets = AssetFolder(assets_dir)
        self._files: list[tuple[IO[Any], Path | None, Path | None]] = []

    def open(self, target: Path | None, binary: bool) -> IO[Any]:
        if target is None:
            stream: IO[Any] = sys.stdout.buffer if binary else _StdoutText()
            self._files.append((stream, None, None))
            return stream
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp",
                                        dir=target.parent)
            _default_mode(temp, directory=False)
        except OSError as exc:
            raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
        handle: IO[Any] = os.fdopen(fd, "wb") if binary else os.fdopen(
            fd, "w", encoding="utf-8", newline="\n")
        self._files.append((handle, Path(temp), target))
        return handle

    def commit(self) -> None:
        """Rename every output into place.  Targets that cannot be replaced (a folder of
        that name) are found first, so a failure changes nothing."""
        for _, _, target in self._files:
            if target is not None and target.is_dir():
                raise OutputError(f"cannot write {target}: a folder of that name is there")
        if self.assets.used and self.assets.final.exists() and not self.assets.final.is_dir():
            raise OutputError(f"cannot write {self.assets.final}: a file of that name is there")
        for handle, _, _ in self._files:
            if handle is not sys.stdout.buffer:
                handle.flush()
                if not isinstance(handle, _StdoutText):
                    os.fsync(handle.fileno())
                    handle.close()
        self.assets.commit()
        for _, temp, target in self._files:
            if temp is not None and target is not None:
                os.replace(temp, target)
        self._files = []

    def abort(self) -> None:
        for handle, temp, _ in self._files:
            if temp is not None:
                try:
                    handle.close()
                except OSError:
                    pass
                try:
                    temp.unlink()
                except OSError:
                    pass
        self._files = []
        self.assets.abort()


class _StdoutText:
    """Text output to stdout that never closes it."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()
