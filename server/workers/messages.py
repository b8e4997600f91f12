"""What a worker process reports to the web process: one frozen dataclass per message.

The messages are pickled by the multiprocessing Connection between the two, so they hold
only plain values and `media.hls.RenditionInfo`. Like `server.workers.child`, which sends
them, this module imports nothing but the standard library and `media.hls`.

A worker sends `Started`, then `Probed`, `Progress` and `RenditionDone` as the job goes,
and one `Outcome` last (none at all when it crashed).
"""

from __future__ import annotations

from dataclasses import dataclass

from media.hls import RenditionInfo


@dataclass(frozen=True)
class Started:
    pid: int


@dataclass(frozen=True)
class Probed:
    duration: float
    width: int | None  # of the top rung; None when the source has no video
    height: int | None
    renditions: tuple[str, ...]  # every rendition the ladder will write, by name
    media_type: str  # what the original is served as


@dataclass(frozen=True)
class Progress:
    percent: float
    renditions: dict[str, float]  # percent per rendition name


@dataclass(frozen=True)
class RenditionDone:
    info: RenditionInfo


@dataclass(frozen=True)
class Done:
    seconds: dict[str, float]  # wall time per stage
    cpu_seconds: float


@dataclass(frozen=True)
class MediaRejected:
    """Permanent: the source is not usable media."""

    reason: str


@dataclass(frozen=True)
class Cancelled:
    pass


@dataclass(frozen=True)
class OutOfSpace:
    """The disk filled (or fell below the free-space floor): not the job's fault; it is
    retried once there is room, without using an attempt."""

    reason: str


@dataclass(frozen=True)
class Failed:
    """Anything else went wrong: transient, the job is retried."""

    message: str


Report = Started | Probed | Progress | RenditionDone
Outcome = Done | MediaRejected | Cancelled | OutOfSpace | Failed
Message = Report | Outcome
