"""The uploads lifecycle: crash recovery at start-up and a periodic sweep of expired uploads.

tus expiration extension: an unfinished upload is kept until `Upload-Expires`; then its
bytes are freed and its video (still `uploading`) removed. The upload row stays as a
tombstone for a while so its URL answers 410 Gone instead of 404.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from server.errors import Problem
from server.services import Services
from server.uploads import complete, records, store
from server.uploads.receive import UploadState

if TYPE_CHECKING:
    from server.workers.pool import WorkerPool

log = logging.getLogger(__name__)
ORPHAN_GRACE_SECONDS = 3600.0


async def sweep_once(services: Services, state: UploadState, now: float | None = None) -> int:
    """Expire what is due; returns how many uploads were swept."""
    db, config = services.db, services.config
    now = time.time() if now is None else now
    swept = 0
    for upload in await records.expired_uploads(db, now):
        if state.locks.held(upload.public_id):
            continue  # a request is writing to it right now: not abandoned
        await asyncio.to_thread(store.remove, store.upload_path(config, upload.public_id))
        await records.set_state(db, upload.id, records.EXPIRED, "expired")
        if upload.video_id is not None:
            await db.write("UPDATE uploads SET video_id = NULL WHERE id = ?", (upload.id,))
            await records.delete_unfinished_video(db, upload.video_id)
        swept += 1
    await records.purge_tombstones(db, now - max(config.upload_expiry_seconds, 86400) * 7)
    known = {u.public_id for u in await records.receiving_uploads(db)}
    known |= {r[0] for r in await db.fetch_all(
        "SELECT public_id FROM uploads WHERE concat = 'partial' AND state = 'complete'")}
    await asyncio.to_thread(_remove_orphans, config.uploads_dir, known, now)
    if swept:
        log.info("swept %d expired uploads", swept)
    return swept


def _remove_orphans(directory: Path, known: set[str], now: float) -> None:
    """Side files of checksummed chunks and files whose upload row is gone."""
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(directory):
            base = entry.name.split(".", 1)[0]
            if base in known and "." not in entry.name:
                continue
            with contextlib.suppress(FileNotFoundError):
                if now - entry.stat().st_mtime > ORPHAN_GRACE_SECONDS:
                    os.unlink(entry.path)


async def recover(services: Services, state: UploadState, pool: WorkerPool | None) -> None:
    """After a crash: finish uploads whose last byte reached the disk but not the DB."""
    for upload in await records.receiving_uploads(services.db):
        path = store.upload_path(services.config, upload.public_id)
        size = await asyncio.to_thread(store.size_on_disk, path)
        try:
            if upload.is_final:
                await complete.finalize_concatenation(services, pool, state, upload)
            elif upload.length is not None and size >= upload.length and size > 0:
                async with state.locks.hold(upload.public_id, None):
                    await complete.finish_upload(services, pool, state, upload)
        except Problem as problem:
            log.info("upload %s not recovered: %s", upload.public_id, problem.detail)


async def run_sweeper(services: Services, state: UploadState) -> None:
    """The periodic sweep, until cancelled."""
    interval = max(1, services.config.upload_sweep_seconds)
    while True:
        try:
            await sweep_once(services, state)
        except Exception:
            log.exception("upload sweep failed")
        await asyncio.sleep(interval)
