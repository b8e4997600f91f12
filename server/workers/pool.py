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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
from multiprocessing import forkserver
from pathlib import Path

from prometheus_client import Gauge

from server.services import Services
from server.workers import queue
from server.workers.queue import Claimed
from server.workers.runner import JobRun, remove_outputs

log = logging.getLogger(__name__)

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
        """Requeue jobs a previous process left `running`, removing their partial outputs."""
        db, config = self.services.db, self.services.config
        for row in await queue.interrupted(db):
            if row["worker_pid"]:
                await _wait_gone(int(row["worker_pid"]))
            job = Claimed(row["id"], row["video_id"], row["public_id"], row["owner_id"],
                          row["attempts"], row["max_attempts"])
            await asyncio.to_thread(remove_outputs, config, job.public_id)
            if job.attempts >= job.max_attempts:
                await queue.end_job(db, job, "failed", "processing was interrupted too often")
            else:
                await queue.requeue(db, job, "interrupted: the server stopped", 0.0)
            log.info("job %s was interrupted; requeued", job.job_id)
        await self._count()

    async def _dispatch(self) -> None:
        while True:
            try:
                await self._fill()
                await self._count()
            except Exception:
                log.exception("job dispatcher")  # keep dispatching: the next tick retries
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            self._wake.clear()

    async def _fill(self) -> None:
        for job in await queue.claim(self.services.db, self.size - len(self.tasks)):
            run = JobRun(self.services, job, self.ctx)
            self.runs[job.job_id] = run
            task = asyncio.create_task(run.run(), name=f"job-{job.job_id}")
            self.tasks[job.job_id] = task
            task.add_done_callback(functools.partial(self._ended, job.job_id))

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
