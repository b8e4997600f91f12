"""Per-process upload state kept on the application (keys.UPLOADS)."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.uploads.locks import UploadLocks


@dataclass
class UploadRuntime:
    locks: UploadLocks = field(default_factory=UploadLocks)
    finishing: set[str] = field(default_factory=set)  # uploads being completed right now
