"""Batches: many inputs, each converted in its own process, on all cores or any executor.

``jobs``: a job (an input, its folder, its name), its outputs, converting it in this
process; ``pool``: planning (folders expanded, clashes refused), up-to-date checks, running
many, the run report; ``isolation``: one job in its own process; ``forkserver``: the process
a local batch forks those from.  ``isolation`` and ``forkserver`` are not imported here: each
is a ``__main__`` (``python -m xparse_convert.batch.isolation``, ``...forkserver``), and a
module imported before it runs as ``__main__`` would load twice.
"""

from __future__ import annotations

from .jobs import Job, run_job, targets_of
from .pool import (
    RUN_REPORT_SCHEMA,
    BatchInterrupted,
    convert_many,
    is_folder,
    is_up_to_date,
    plan_jobs,
    results_in,
    write_run_report,
)

__all__ = ["RUN_REPORT_SCHEMA", "BatchInterrupted", "Job", "convert_many", "is_folder",
           "is_up_to_date", "plan_jobs", "results_in", "run_job", "targets_of", "write_run_report"]
