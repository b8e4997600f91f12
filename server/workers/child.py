"""The worker process: runs `media.pipeline.process` for one job and reports over a pipe.

Only the standard library, `media` and `server.workers.messages` (what is sent to the web
process) are imported here: all are preloaded by the multiprocessing fork server that the
worker is forked from. The web process imports this module too (for `JobSpec` and `main`);
the media code is imported inside the functions that use it.
"""

from __future__ import annotations

import contextlib
import os
import resource
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import TYPE_CHECKING

from server.workers import messages

if TYPE_CHECKING:
    from media.pipeline import ProcessEvent, ProcessSettings

WATCHDOG_SECONDS = 0.25


@dataclass(frozen=True)
class JobSpec:
    source: str
    out_dir: str
    enabled: tuple[int, ...] | None  # ladder rungs by short side; None keeps all
    preset: str
    segment_seconds: float
    max_duration: float | None
    max_short_side: int | None
    nice: int
    scheduling: str = "idle"  # "idle" (SCHED_IDLE) or "batch" (SCHED_BATCH)
    min_free_bytes: int = 0  # the job stops (OutOfSpace) when less is free


def _watch_parent(parent: int) -> None:
    """Exit when the web process is gone (crashed or killed), so no orphan keeps encoding:
    the fork server, our parent, exits with the web process, and we are reparented."""
    while True:
        time.sleep(WATCHDOG_SECONDS)
        if os.getppid() != parent:
            os._exit(3)


def _settings(spec: JobSpec) -> ProcessSettings:
    from media.ladder import LadderSettings
    from media.pipeline import ProcessSettings

    ladder = LadderSettings(
        enabled=frozenset(spec.enabled) if spec.enabled else None,
        preset=spec.preset,
        segment_target=spec.segment_seconds,
        max_duration=spec.max_duration,
        max_short_side=spec.max_short_side,
    )
    return ProcessSettings(ladder=ladder, min_free_bytes=spec.min_free_bytes)


def _message(event: ProcessEvent) -> messages.Report:
    from media.pipeline import Probed
    from media.transcode import Progress, RenditionDone

    if isinstance(event, Probed):
        top = event.ladder.video[0] if event.ladder.video else None
        names = [r.name for r in event.ladder.video]
        if event.ladder.audio is not None:
            names.append(event.ladder.audio.name)
        return messages.Probed(event.probe.duration, top.width if top else None,
                               top.height if top else None, tuple(names),
                               event.probe.media_type)
    if isinstance(event, Progress):
        return messages.Progress(event.overall, dict(event.renditions))
    if isinstance(event, RenditionDone):
        return messages.RenditionDone(event.info)
    raise TypeError(f"unknown pipeline event {event!r}")


def main(spec: JobSpec, conn: Connection, cancel: Event) -> None:
    """Entry point of the worker process (multiprocessing target)."""
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    if spec.nice:
        os.nice(spec.nice)  # below the web process, so requests are answered first
    with contextlib.suppress(AttributeError, OSError):
        # sched(7): under SCHED_IDLE the encoders get only CPU time nothing else wants, so a
        # waking web process preempts them at once; niceness alone (even 19) left the API's
        # p99 at 3x its idle value while all cores encoded. SCHED_BATCH is the milder choice
        # for a machine whose other busy services should not starve transcodes.
        # Threads the encoders start later inherit the policy and the niceness.
        policy = os.SCHED_IDLE if spec.scheduling == "idle" else os.SCHED_BATCH
        os.sched_setscheduler(0, policy, os.sched_param(0))
    from media.errors import MediaError, OutOfSpace, TranscodeCancelled, out_of_space
    from media.pipeline import process

    conn.send(messages.Started(os.getpid()))
    try:
        result = process(spec.source, spec.out_dir, _settings(spec),
                         on_event=lambda event: conn.send(_message(event)),
                         should_cancel=cancel.is_set)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        conn.send(messages.Done(result.seconds, round(usage.ru_utime + usage.ru_stime, 3)))
    except MediaError as exc:
        conn.send(messages.MediaRejected(exc.reason))
    except TranscodeCancelled:
        conn.send(messages.Cancelled())
    except OutOfSpace as exc:
        conn.send(messages.OutOfSpace(exc.reason))
    except BrokenPipeError:
        os._exit(3)  # the web process is gone: nobody to report to
    except Exception as exc:  # reported to the parent, which retries the job
        full = out_of_space(exc)
        conn.send(messages.OutOfSpace(full.reason) if full else
                  messages.Failed(f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()
