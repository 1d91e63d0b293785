"""TextIn's async parse API: ``client`` talks to it (submit, wait, download; bounded and
retried), ``flows`` turns documents and job ids into converted files.  Needs the ``api`` extra
(``pip install 'xparse-convert[api]'``, for httpx) once a ``Client`` is made."""

from __future__ import annotations

from .client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_DOWNLOAD_MB,
    JOB_ID,
    JOB_ID_RULE,
    MAX_ANSWER_BYTES,
    STATUS_PATH,
    SUBMIT_PATH,
    WAITING,
    Backoff,
    Cancelled,
    Client,
    JobStatus,
    NetworkError,
    TooLarge,
    api_error,
    check_json,
    is_job_id,
    shown,
)
from .flows import (
    DOCUMENT_SUFFIXES,
    check_targets,
    fetch_and_convert,
    find_documents,
    output_folder,
    parse_and_convert,
    result_name,
)

__all__ = [
    "DEFAULT_BASE_URL", "DEFAULT_MAX_DOWNLOAD_MB", "DOCUMENT_SUFFIXES", "JOB_ID", "JOB_ID_RULE",
    "MAX_ANSWER_BYTES", "STATUS_PATH", "SUBMIT_PATH", "WAITING", "Backoff", "Cancelled",
    "Client", "JobStatus", "NetworkError", "TooLarge", "api_error", "check_json",
    "check_targets", "fetch_and_convert", "find_documents", "is_job_id", "output_folder",
    "parse_and_convert", "result_name", "shown",
]
