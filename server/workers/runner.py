"""One job in one worker process: start it, relay its events, settle the job's outcome.

The web process never blocks on the worker: the pipe's file descriptor is watched by
the event loop (`loop.add_reader`) and each message is handled as it arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, ForkServerProcess
from pathlib import Path
from typing import Any, assert_never

from media.hls import RenditionInfo
from server import events, storage
from server.config import Config
from server.services import Services
from server.statuses import JobEnd
from server.workers import child, messages, queue, space
from server.workers.queue import MAX_INTERRUPTIONS, OUT_OF_SPACE, Claimed

log = logging.getLogger(__name__)

CANCELLED = "processing was cancelled"
INTERRUPTED = "interrupted: the server stopped"
TOO_OFTEN = "processing was interrupted too often"
NO_ROOM = "processing needs more disk space than the server has free"
PROGRESS_SECONDS = 0.5  # at most two progress writes (and bus events) a second
CANCEL_GRACE_SECONDS = 1.0  # then the worker is terminated
JOIN_SECONDS = 5.0
# Transcoding reports twice a second; thumbnails of a long video may take minutes.
STALL_SECONDS = 900.0


def job_spec(config: Config, public_id: str, generation: int = 0) -> child.JobSpec:
    rungs = tuple(int(r) for r in config.ladder.replace(" ", "").split(",") if r)
    return child.JobSpec(
        source=str(storage.original_path(config, public_id)),
        out_dir=str(storage.video_layout(config, public_id, generation).out),
        enabled=rungs or None,
        preset=config.x264_preset,
        segment_seconds=config.segment_seconds,
        max_duration=float(config.max_duration_seconds) or None,
        max_short_side=config.max_resolution or None,
        nice=config.worker_nice,
        scheduling=config.worker_scheduling,
        min_free_bytes=config.min_free_disk_bytes,
    )


def space_delay(interruptions: int) -> float:
    """Seconds before a job that ran out of disk space runs again (if the floor is met
    by then): 2 s, doubling with each interruption, at most 10 minutes."""
    return float(min(600, 2 ** min(interruptions + 1, 10)))


def remove_unfinished(config: Config, public_id: str, generation: int = 0) -> None:
    """Delete what a run wrote and did not finish (partial renditions and storyboard,
    temporary files); finished renditions, playlists and the poster stay."""
    for path in storage.video_layout(config, public_id, generation).unfinished():
        _remove(path)


def remove_outputs(config: Config, public_id: str, generation: int = 0, *,
                   original: bool = False) -> None:
    """Delete what the runs of one generation wrote; with `original`, the uploaded bytes
    too."""
    layout = storage.video_layout(config, public_id, generation)
    for path in [*layout.outputs(), *([layout.original] if original else [])]:
        _remove(path)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class JobRun:
    def __init__(self, services: Services, job: Claimed, ctx: ForkServerContext) -> None:
        self.services, self.job, self.ctx = services, job, ctx
        self.config, self.db = services.config, services.db
        self.cancel_event = ctx.Event()
        self.cancel_requested = False
        self.finished = asyncio.Event()
        self.process: ForkServerProcess | None = None
        self.messages: asyncio.Queue[messages.Message | None] = asyncio.Queue()
        self.has_video = True
        self.progress: dict[str, Any] = {"percent": 0.0, "renditions": {}, "eta_seconds": None}
        self.started = time.monotonic()
        self.first_percent: float | None = None  # where this run began (it may go on)
        self.last_write = 0.0
        # A rebuild's finished renditions, recorded all at once when the ladder is done
        # (a run that goes on from another reports the ones it found finished again).
        self.staged: dict[str, RenditionInfo] = {}

    # -- control from the web process ----------------------------------------------------
    def request_cancel(self) -> None:
        """Polled by the worker every 0.25 s; terminated if it has not stopped in a second."""
        self.cancel_requested = True
        self.cancel_event.set()
        asyncio.get_running_loop().call_later(CANCEL_GRACE_SECONDS, self.terminate)

    def terminate(self) -> None:
        if self.process is not None and self.process.is_alive():
            self.process.terminate()

    async def reap(self) -> None:
        if self.process is not None:
            process = self.process
            await asyncio.to_thread(process.join, JOIN_SECONDS)
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, JOIN_SECONDS)

    # -- the job -----------------------------------------------------------------------
    async def run(self) -> None:
        try:
            await self._begin()
            outcome = await self._relay(await self._spawn())
            await self.reap()
            await self._settle(outcome)
        except asyncio.CancelledError:
            raise  # shutting down: the job stays `running` and is requeued at start-up
        except Exception as exc:
            log.exception("job %s: the runner failed", self.job.job_id)
            await self._failed(f"{type(exc).__name__}: {exc}")
        finally:
            self.finished.set()

    async def _begin(self) -> None:
        if await queue.start_processing(self.db, self.job.video_id):
            await events.video_status_changed(self.services, self.job.owner_id,
                                              self.job.public_id, "processing")

    async def _spawn(self) -> Connection:
        reader, writer = self.ctx.Pipe(duplex=False)
        spec = job_spec(self.config, self.job.public_id, self.job.generation)
        self.process = self.ctx.Process(
            target=child.main, args=(spec, writer, self.cancel_event),
            name=f"reelhouse-transcode-{self.job.job_id}", daemon=True)
        # Starting a process talks to the fork server over a socket: off the loop.
        await asyncio.to_thread(self.process.start)
        writer.close()  # ours; the worker's copy closing is how its exit is seen (EOF)
        await queue.set_worker(self.db, self.job.job_id, self.process.pid)
        return reader

    async def _relay(self, reader: Connection) -> messages.Outcome | None:
        loop = asyncio.get_running_loop()
        fd = reader.fileno()

        def readable() -> None:
            try:
                while reader.poll():
                    self.messages.put_nowait(reader.recv())
            except (EOFError, OSError):
                loop.remove_reader(fd)
                self.messages.put_nowait(None)

        loop.add_reader(fd, readable)
        outcome: messages.Outcome | None = None
        try:
            while (message := await self._next()) is not None:
                if isinstance(message, messages.Outcome):
                    outcome = message
                else:
                    await self._handle(message)
        finally:
            loop.remove_reader(fd)
            reader.close()
        return outcome

    async def _next(self) -> messages.Message | None:
        """The worker's next message; a worker silent for too long is hung and is ended
        (its pipe then reaches EOF without an outcome: a transient failure, retried)."""
        while True:
            try:
                return await asyncio.wait_for(self.messages.get(), STALL_SECONDS)
            except TimeoutError:
                log.warning("job %s: no word from its worker in %s s", self.job.job_id,
                            STALL_SECONDS)
                if self.process is not None and self.process.is_alive():
                    self.process.kill()

    async def _handle(self, message: messages.Report) -> None:
        match message:
            case messages.Started():
                pass  # its pid was recorded (queue.set_worker) when the process started
            case messages.Probed():
                self.has_video = message.width is not None
                self.progress["renditions"] = {name: 0.0 for name in message.renditions}
                await queue.save_probe(self.db, self.job, message.duration, message.width,
                                       message.height, message.media_type)
            case messages.Progress():
                self.progress["renditions"].update(message.renditions)
                await self._progress(min(message.percent, 99.9))
            case messages.RenditionDone(info=info) if self.job.rebuild:
                self.progress["renditions"][info.name] = 100.0
                self.staged[info.name] = info
                await self._progress(self.progress["percent"], force=True)
            case messages.RenditionDone(info=info):
                self.progress["renditions"][info.name] = 100.0
                playable = info.kind == "video" or not self.has_video
                # media.pipeline rewrote master.m3u8 (with this rendition) before reporting it.
                if await queue.add_rendition(self.db, self.job, info, playable):
                    await events.video_status_changed(self.services, self.job.owner_id,
                                                      self.job.public_id, "ready")
                await self._progress(self.progress["percent"], force=True)
            case _:
                assert_never(message)

    async def _progress(self, percent: float, *, force: bool = False) -> None:
        self.progress["percent"] = round(percent, 1)
        if self.first_percent is None:
            self.first_percent = percent
        elapsed = time.monotonic() - self.started
        gained = percent - self.first_percent  # in this run, which may go on from another
        self.progress["eta_seconds"] = (
            round(elapsed * (100 - percent) / gained, 1) if gained >= 1 and percent < 100
            else None
        )
        now = time.monotonic()
        if force or now - self.last_write >= PROGRESS_SECONDS:
            self.last_write = now
            if not await queue.save_progress(self.db, self.job, self.progress):
                self.request_cancel()  # the video was deleted: stop working for nobody
                return
            events.video_progress(self.services, self.job.public_id, self._snapshot())

    def _snapshot(self) -> dict[str, Any]:
        # A copy: the bus serialises an event when a subscriber first sends it.
        return {**self.progress, "renditions": dict(self.progress["renditions"])}

    # -- outcomes ----------------------------------------------------------------------
    async def _settle(self, outcome: messages.Outcome | None) -> None:
        """`outcome` is None when the worker ended without one (it crashed or was killed)."""
        if not await queue.video_exists(self.db, self.job.video_id):
            # Deleted while processing (its job row went with it): leave no files behind.
            directory = storage.video_dir(self.config, self.job.public_id)
            await asyncio.to_thread(storage.remove_tree, directory)
            return
        match outcome:
            case messages.Done():
                # Finished, even if a cancel came too late to stop it: keep the result.
                await self._done(outcome.cpu_seconds)
            case _ if self.cancel_requested:
                await self._end("cancelled", CANCELLED, original=False)
            case messages.Cancelled():
                await self._end("cancelled", CANCELLED, original=False)
            case messages.MediaRejected():
                # Permanent: the bytes are not usable media, so they are not kept (unless
                # the video played before: then the rules changed, not the bytes).
                await self._end("failed", outcome.reason, original=not self.job.rebuild)
            case messages.OutOfSpace():
                await self._out_of_space(outcome.reason)
            case messages.Failed():
                await self._failed(outcome.message)
            case None:
                code = self.process.exitcode if self.process else None
                await self._failed(f"the worker exited with code {code}")
            case _:
                assert_never(outcome)

    async def _done(self, cpu_seconds: float) -> None:
        self.progress.update(percent=100.0, eta_seconds=0.0)
        self.progress["renditions"] = {k: 100.0 for k in self.progress["renditions"]}
        if self.job.rebuild:
            await self._switch(cpu_seconds)
        elif await queue.finish(self.db, self.job, self.progress, cpu_seconds):
            await events.video_status_changed(self.services, self.job.owner_id, self.job.public_id,
                                              "ready")
        events.video_progress(self.services, self.job.public_id, self._snapshot())

    async def _switch(self, cpu_seconds: float) -> None:
        """A rebuild is done: the video serves the new ladder from now on. Players that
        loaded the old one keep it for `replaced_ladder_seconds` (its URLs differ)."""
        remove_after = time.time() + self.config.replaced_ladder_seconds
        staged = sorted(self.staged.values(), key=lambda info: info.name)
        if await queue.switch(self.db, self.job, staged, self.progress, cpu_seconds,
                              remove_after) is None:
            return
        await events.video_status_changed(self.services, self.job.owner_id, self.job.public_id,
                                          "ready")
        events.video_progress(self.services, self.job.public_id, self._snapshot())

    async def _end(self, status: JobEnd, reason: str, *, original: bool) -> None:
        await end(self.services, self.job, status, reason, original=original)

    async def _failed(self, error: str) -> None:
        """The worker failed or died: its own failure, unless the disk was full."""
        disk = await space.disk_space(self.config)
        if not disk.floor_met:
            await self._out_of_space(f"the disk is full ({space.describe(disk)})")
        else:
            await self._transient(error)

    async def _transient(self, error: str) -> None:
        """An attempt used; the next one goes on from what this one wrote."""
        log.warning("job %s attempt %s failed: %s", self.job.job_id, self.job.attempts, error)
        if self.job.attempts >= self.job.max_attempts:
            await self._end("failed", f"processing failed: {error}", original=False)
            return
        if await queue.requeue(self.db, self.job, error, 2.0 ** self.job.attempts):
            await events.video_status_changed(self.services, self.job.owner_id,
                                              self.job.public_id, "uploaded")

    async def _out_of_space(self, reason: str) -> None:
        """Not the job's fault: no attempt used. What it had not finished is removed (room
        for the rest of the server); what it finished stays, so a ready video stays ready."""
        log.warning("job %s ran out of disk space: %s", self.job.job_id, reason)
        await asyncio.to_thread(remove_unfinished, self.config, self.job.public_id,
                                self.job.generation)
        if self.job.interruptions + 1 >= MAX_INTERRUPTIONS:
            await self._end("failed", f"{NO_ROOM}: {reason}", original=False)
            return
        shown = f"waiting for disk space: {reason}"
        if await queue.requeue(self.db, self.job, f"{OUT_OF_SPACE}: {reason}",
                               space_delay(self.job.interruptions), interrupted=True,
                               shown=shown):
            await events.video_status_changed(self.services, self.job.owner_id,
                                              self.job.public_id, "uploaded", shown)


async def end(services: Services, job: Claimed, status: JobEnd, reason: str, *,
              original: bool = False) -> None:
    """The job did not finish. Its video ends `failed` without its outputs, unless the job
    rebuilt a ready video: then only the new generation goes and the video plays on."""
    await asyncio.to_thread(remove_outputs, services.config, job.public_id, job.generation,
                            original=original and not job.rebuild)
    if job.rebuild:
        await queue.end_rebuild(services.db, job, status, reason)
        await events.video_status_changed(services, job.owner_id, job.public_id, "ready",
                                          queue.rebuild_ended(reason))
        return
    await queue.end_job(services.db, job, status, reason)
    await events.video_status_changed(services, job.owner_id, job.public_id, "failed", reason)
