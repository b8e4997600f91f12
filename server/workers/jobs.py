"""What the rest of the server asks of transcoding: queue a video's job, cancel it, stop it.

The job is a row in the `jobs` table (server/workers/queue.py) that the worker pool picks up.
"""

from __future__ import annotations

import asyncio
import contextlib

from server import events
from server.db import Row
from server.errors import Conflict
from server.services import Services
from server.statuses import VideoStatus
from server.workers import queue
from server.workers.pool import WorkerPool
from server.workers.runner import CANCELLED, remove_outputs

# A video in these states has a job that is queued or running.
PROCESSING: tuple[VideoStatus, ...] = ("uploaded", "processing")


async def enqueue_transcode(services: Services, pool: WorkerPool | None, video: Row) -> int:
    """Called when an upload is complete and its bytes are at storage.original_path."""
    job_id = await queue.enqueue(services.db, video["id"], services.config.job_max_attempts)
    await events.upload_completed(services, video["owner_id"], video["public_id"])
    if pool is not None:
        pool.wake()  # start it now rather than at the dispatcher's next poll
    return job_id


async def cancel_transcode(services: Services, pool: WorkerPool | None, video: Row) -> None:
    """Stop the video's processing. The video ends `failed` with "processing was cancelled";
    its original bytes are kept (nothing the user stored is lost), partial outputs are not."""
    db = services.db
    if await queue.cancel_queued(db, video["id"], CANCELLED):
        await asyncio.to_thread(remove_outputs, services.config, video["public_id"])
        await events.video_status_changed(services, video["owner_id"], video["public_id"],
                                          "failed", CANCELLED)
        return
    job_id = await queue.running_job(db, video["id"])
    if job_id is None or pool is None or not await pool.cancel(job_id):
        raise Conflict("this video is not being processed")


async def stop_processing(services: Services, pool: WorkerPool | None, video: Row) -> None:
    """Before a video is deleted: its job, if any, is stopped (nothing running is fine)."""
    if video["status"] in PROCESSING:
        with contextlib.suppress(Conflict):
            await cancel_transcode(services, pool, video)
