"""The worker pool: a dispatcher task in the web process hands due jobs to worker processes.

One process per job. Processes come from a multiprocessing "forkserver" (never a fork of
the web process, which would inherit the event loop, sockets and SQLite connections):
a small clean process, started once, that has already imported PyAV and the media code
and forks a worker per job in a few milliseconds, where "spawn" would pay a new
interpreter and its imports (about a second on a busy 2-core machine) before every job,
which matters for the first playable rendition. A process per job gives the simplest
cancel and crash story: cancelling or killing a job is signalling or terminating its
own process, a crash takes no other job with it, and the memory a decoder grew is
returned when the job ends. An idle server runs no worker process.

A server that stops (SIGTERM, kill -9, a power cut) leaves its jobs `running`; the next
start requeues them as interrupted, with their outputs kept: the video stays playable
if it was, and its job goes on from where it stood without using an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import time
from multiprocessing import forkserver
from pathlib import Path

from prometheus_client import Gauge

from server.services import Services
from server.workers import queue, space
from server.workers.queue import MAX_INTERRUPTIONS
from server.workers.runner import INTERRUPTED, TOO_OFTEN, JobRun, end, remove_outputs

log = logging.getLogger(__name__)

RETIRE_SECONDS = 30.0  # how often retired generations are looked for
POLL_SECONDS = 1.0  # queued jobs are also picked up at once when `wake` is called
GONE_SECONDS = 3.0  # at start-up, how long a previous server's worker may take to exit
CANCEL_WAIT_SECONDS = 5.0


class WorkerPool:
    def __init__(self, services: Services, job_counts: Gauge) -> None:
        self.services, self.job_counts = services, job_counts  # jobs by status, in /metrics
        self.size = services.config.worker_count
        self.ctx = multiprocessing.get_context("forkserver")
        self.ctx.set_forkserver_preload(["server.workers.child", "media.pipeline"])
        self.runs: dict[int, JobRun] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._warm: asyncio.Task[None] | None = None
        self._waiting_for_space = False

    async def start(self) -> None:
        await self.recover()
        # The fork server starts in the background so the first upload does not wait for it.
        self._warm = asyncio.create_task(asyncio.to_thread(forkserver.ensure_running))
        self._dispatcher = asyncio.create_task(self._dispatch(), name="job-dispatcher")

    async def stop(self) -> None:
        """Stop dispatching and end every worker; their jobs stay `running` for `recover`."""
        if self._warm is not None:
            with contextlib.suppress(Exception):
                await self._warm
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        tasks, runs = list(self.tasks.values()), list(self.runs.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for run in runs:
            run.terminate()
        await asyncio.gather(*(run.reap() for run in runs), return_exceptions=True)

    def wake(self) -> None:
        self._wake.set()

    async def cancel(self, job_id: int) -> bool:
        """Ask the job's worker to stop and wait until the job is settled."""
        run = self.runs.get(job_id)
        if run is None:
            return False
        run.request_cancel()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(run.finished.wait(), CANCEL_WAIT_SECONDS)
        return True

    async def recover(self) -> None:
        """Requeue jobs a previous process left `running`: interrupted, not failed. What
        they wrote stays (the next run goes on from it) and their attempt is given back."""
        db = self.services.db
        for job, worker_pid in await queue.interrupted(db):
            if worker_pid:
                await _wait_gone(int(worker_pid))
            if job.interruptions + 1 >= MAX_INTERRUPTIONS:
                await end(self.services, job, "failed", TOO_OFTEN)
                log.warning("job %s was interrupted %s times; given up", job.job_id,
                            job.interruptions + 1)
            else:
                await queue.requeue(db, job, INTERRUPTED, 0.0, interrupted=True)
                log.info("job %s was interrupted; requeued", job.job_id)
        await self._count()

    async def retire(self) -> int:
        """Remove the generations of outputs no longer served whose time is up (a video
        processed again keeps its previous ladder a while for the players that began with
        it). Returns how many were removed."""
        db, config = self.services.db, self.services.config
        due = await queue.due_retired(db, time.time())
        for video_id, public_id, generation in due:
            await asyncio.to_thread(remove_outputs, config, public_id, generation)
            await queue.forget_retired(db, video_id, generation)
            log.info("video %s: generation %s of its outputs removed", public_id, generation)
        return len(due)

    async def _dispatch(self) -> None:
        retired_at = 0.0
        while True:
            try:
                await self._fill()
                await self._count()
                if time.monotonic() - retired_at >= RETIRE_SECONDS:
                    retired_at = time.monotonic()
                    await self.retire()
            except Exception:
                log.exception("job dispatcher")  # keep dispatching: the next tick retries
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    async def _fill(self) -> None:
        free = self.size - len(self.tasks)
        if free <= 0 or not await self._room():
            return
        config = self.services.config
        await queue.release_held(self.services.db, config.jobs_queued_per_user)
        for job in await queue.claim(self.services.db, free, config.jobs_running_per_user):
            run = JobRun(self.services, job, self.ctx)
            self.runs[job.job_id] = run
            task = asyncio.create_task(run.run(), name=f"job-{job.job_id}")
            self.tasks[job.job_id] = task
            task.add_done_callback(functools.partial(self._ended, job.job_id))

    async def _room(self) -> bool:
        """No job starts while free disk space is at or below the floor: it would only
        run out of space again (and the database needs some room too)."""
        disk = await space.disk_space(self.services.config)
        if disk.floor_met == self._waiting_for_space:
            self._waiting_for_space = not disk.floor_met
            if self._waiting_for_space:
                log.warning("processing waits for disk space: %s", space.describe(disk))
            else:
                log.info("processing goes on: %s", space.describe(disk))
        return disk.floor_met

    def _ended(self, job_id: int, _task: asyncio.Task[None]) -> None:
        self.runs.pop(job_id, None)
        self.tasks.pop(job_id, None)
        self.wake()

    async def _count(self) -> None:
        for status, count in (await queue.counts(self.services.db)).items():
            self.job_counts.labels(status=status).set(count)


async def _wait_gone(pid: int) -> None:
    """A worker of a server that was killed exits by itself (it watches its parent)."""
    for _ in range(int(GONE_SECONDS / 0.1)):
        if not await asyncio.to_thread(_is_worker, pid):
            return
        await asyncio.sleep(0.1)


def _is_worker(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"multiprocessing" in cmdline and pid != os.getpid()
