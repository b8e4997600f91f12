"""The states a video and a transcoding job are in: `videos.status` and `jobs.status`.

The same values as the CHECK constraints of migrations/0001_core.sql.
"""

from __future__ import annotations

from typing import Literal, get_args

VideoStatus = Literal["uploading", "uploaded", "processing", "ready", "failed"]
JobStatus = Literal["queued", "running", "done", "failed", "cancelled"]
JobEnd = Literal["failed", "cancelled"]  # a job that did not finish

JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
