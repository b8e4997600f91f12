"""What the rest of the server asks of transcoding: queue a video's job, cancel it, stop it.

The job is a row in the `jobs` table (server/workers/queue.py) that the worker pool picks up.
"""

from __future__ import annotations

import asyncio
import contextlib

from server import events, storage
from server.db import Row
from server.errors import Conflict
from server.services import Services
from server.workers import queue
from server.workers.pool import WorkerPool
from server.workers.runner import CANCELLED, remove_outputs


async def enqueue_transcode(services: Services, pool: WorkerPool | None, video: Row) -> int:
    """Called when an upload is complete and its bytes are at storage.original_path."""
    config = services.config
    job_id = await queue.enqueue(services.db, video["id"], config.job_max_attempts,
                                 config.jobs_queued_per_user)
    await events.upload_completed(services, video["owner_id"], video["public_id"])
    if pool is not None:
        pool.wake()  # start it now rather than at the dispatcher's next poll
    return job_id


async def cancel_transcode(services: Services, pool: WorkerPool | None, video: Row) -> None:
    """Stop the video's processing. The video ends `failed` with "processing was cancelled";
    its original bytes are kept (nothing the user stored is lost), partial outputs are not.
    A ready video being processed again keeps playing what it had."""
    db = services.db
    queued = await queue.cancel_queued(db, video["id"], CANCELLED)
    if queued is True:
        await asyncio.to_thread(remove_outputs, services.config, video["public_id"],
                                video["generation"])
        await events.video_status_changed(services, video["owner_id"], video["public_id"],
                                          "failed", CANCELLED)
        return
    if queued is False:  # a rebuild that had not started: the video plays on as it was
        await events.video_status_changed(services, video["owner_id"], video["public_id"],
                                          "ready", queue.rebuild_ended(CANCELLED))
        return
    job_id = await queue.running_job(db, video["id"])
    if job_id is None or pool is None or not await pool.cancel(job_id):
        raise Conflict("this video is not being processed")


async def stop_processing(services: Services, pool: WorkerPool | None, video: Row) -> None:
    """Before a video is deleted: its job, if any, is stopped (nothing running is fine)."""
    with contextlib.suppress(Conflict):
        await cancel_transcode(services, pool, video)


async def reprocess(services: Services, pool: WorkerPool | None, video: Row) -> None:
    """Process a failed or ready video again from its stored original (after a failure, or
    a change of the ladder). A ready video keeps playing its ladder until the new one is
    complete. 409 while the video is uploading or a job of it is queued or running."""
    if video["status"] not in ("failed", "ready"):
        raise Conflict("this video is being uploaded or processed; try again when it is done")
    original = storage.original_path(services.config, video["public_id"])
    if not await asyncio.to_thread(original.is_file):
        raise Conflict("the original file of this video is no longer stored; upload it again")
    job = await queue.reprocess(services.db, video["id"], services.config.job_max_attempts,
                                services.config.jobs_queued_per_user)
    if job is None:
        raise Conflict("this video is being processed already")
    if not job.rebuild:
        # What a failed run may have left of the generation it wrote goes now.
        await asyncio.to_thread(remove_outputs, services.config, video["public_id"],
                                video["generation"])
        await events.video_status_changed(services, video["owner_id"], video["public_id"],
                                          "uploaded")
    if pool is not None:
        pool.wake()
