"""One job of a batch: an input, the folder its outputs go to and their name; where its
outputs land; and converting it in this process (what the isolated child runs)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..convert import Report, convert
from ..source import stem_of
from ..targets import output_folder, output_paths
from ..writers import Writer


@dataclass(frozen=True)
class Job:
    """One input of a batch and the folder its outputs go to (None: beside the input)."""

    source: str
    out_dir: str | None
    name: str | None = None

    @property
    def stem(self) -> str:
        """The name of its outputs: ``name``, else the input's."""
        return self.name or stem_of(self.source)

    @property
    def folder(self) -> Path:
        """The folder its outputs go to."""
        return output_folder(self.source, self.out_dir)


def run_job(job: Job, to: Sequence[str], options: dict[str, Any] | None,
            memory_limit_mb: int | None = None) -> Report:
    """Convert one job in this process; every failure becomes its report
    (``Report.failed``), a bug included."""
    started = time.perf_counter()
    try:
        return convert(job.source, to, job.out_dir, options, name=job.name)
    except Exception as exc:  # MemoryError too: a job never raises for its input
        return Report.failed(job.source, exc, seconds=time.perf_counter() - started,
                             memory_limit_mb=memory_limit_mb)


def targets_of(job: Job, writers: Sequence[type[Writer]]) -> dict[str, Path]:
    """Each format's output of ``job``."""
    return output_paths(job.stem, job.folder, writers)
