"""What happens when an upload's last byte is on disk: fsync, scan, move, hand over.

Both paths (tus and multipart) end here. The file is fsynced, optionally scanned, moved
with os.replace to `media/<video>/original`, and `jobs.enqueue_transcode` marks the video
`uploaded`, queues its job and publishes `upload.completed`.

A completion, once started, runs to its end even when the request that started it is
cancelled (store.runs_to_end): a file moved into place without its job row, or parts
joined without the final marked complete, would strand the video.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from server import events, storage
from server.db import Row
from server.errors import Gone, Problem, UnsupportedMedia
from server.services import Services
from server.uploads import records, sniff, store
from server.uploads.receive import UploadState, check_free_disk
from server.uploads.records import Upload
from server.videos import get_video_by_key
from server.workers import jobs

if TYPE_CHECKING:
    from server.workers.pool import WorkerPool

log = logging.getLogger(__name__)
SCAN_OUTPUT_LIMIT = 64 * 1024


class ScanRejected(Problem):
    status, slug = 422, "scan-rejected"


async def scan(command: str, path: Path) -> str | None:
    """Runs the configured scanner; returns its reason when it refuses the file."""
    args = [part.replace("{path}", str(path)) for part in shlex.split(command)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    except OSError as exc:
        return f"the scanner could not run: {exc}"
    assert proc.stdout is not None
    output = await proc.stdout.read(SCAN_OUTPUT_LIMIT)
    while await proc.stdout.read(SCAN_OUTPUT_LIMIT):
        pass  # drain so the scanner never blocks on a full pipe
    code = await proc.wait()
    if code == 0:
        return None
    text = output.decode("utf-8", "replace").strip()
    return text[-1000:] or f"the scanner refused the file (exit status {code})"


async def fail_video(services: Services, video_id: int | None, reason: str) -> None:
    if video_id is None:
        return
    db = services.db
    await db.write("UPDATE videos SET status = 'failed', error = ?, updated_at ="
                   " strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?", (reason, video_id))
    row = await db.fetch_one("SELECT owner_id, public_id FROM videos WHERE id = ?", (video_id,))
    if row is not None:
        await events.video_status_changed(services, row["owner_id"], row["public_id"],
                                          "failed", reason)


async def fail_upload(services: Services, upload: Upload, reason: str) -> None:
    """The bytes go, the reason stays on the video so its owner can see why."""
    path = store.upload_path(services.config, upload.public_id)
    await asyncio.to_thread(store.remove, path)
    await records.set_state(services.db, upload.id, records.FAILED, reason)
    await fail_video(services, upload.video_id, reason)


async def reject_sniffed(services: Services, upload: Upload, verdict: sniff.Sniffed
                         ) -> NoReturn:
    reason = sniff.refusal(verdict)
    await fail_upload(services, upload, reason)
    raise UnsupportedMedia(reason + "; the upload was removed")


@store.runs_to_end
async def finish_file(services: Services, pool: WorkerPool | None, video: Row, path: Path
                      ) -> Row:
    """Scan, move to the original's place and queue processing. Returns the fresh row."""
    config, db = services.config, services.db
    size = await asyncio.to_thread(store.size_on_disk, path)
    await store.run_blocking(store.fsync_file, path)
    if config.scan_command:
        reason = await scan(config.scan_command, path)
        if reason is not None:
            await asyncio.to_thread(store.remove, path)
            await fail_video(services, video["id"], reason)
            raise ScanRejected(f"the upload was refused by the scanner: {reason}")
    target = storage.original_path(config, video["public_id"])
    await store.run_blocking(store.move_into_place, path, target)
    await db.write("UPDATE videos SET size = ?, bytes_received = ? WHERE id = ?",
                   (size, size, video["id"]))
    fresh = await get_video_by_key(db, video["id"])
    await jobs.enqueue_transcode(services, pool, fresh)
    return await get_video_by_key(db, video["id"])


@store.runs_to_end
async def finish_upload(services: Services, pool: WorkerPool | None, state: UploadState,
                        upload: Upload) -> None:
    """Called with the upload's lock held, once its file holds `length` bytes."""
    db = services.db
    path = store.upload_path(services.config, upload.public_id)
    if upload.is_partial:
        await store.run_blocking(store.fsync_file, path)
        await records.set_state(db, upload.id, records.COMPLETE)
        for final in await records.finals_using(db, upload.owner_id, upload.public_id):
            try:
                await finalize_concatenation(services, pool, state, final)
            except Problem as problem:  # the final's video records why; this part is fine
                log.info("concatenation %s refused: %s", final.public_id, problem.detail)
        return
    if upload.video_id is None:
        await fail_upload(services, upload, "the video was deleted during its upload")
        raise Gone("the video this upload belonged to was deleted")
    video = await get_video_by_key(db, upload.video_id)
    try:
        await finish_file(services, pool, video, path)
    except ScanRejected as problem:
        await records.set_state(db, upload.id, records.FAILED, problem.detail)
        raise
    await records.set_state(db, upload.id, records.COMPLETE)


@store.runs_to_end
async def finalize_concatenation(services: Services, pool: WorkerPool | None,
                                 state: UploadState, final: Upload) -> bool:
    """tus concatenation: once every partial is complete, join them into the final upload.

    Returns True when the final upload was completed now.
    """
    if final.public_id in state.finishing:
        return False
    state.finishing.add(final.public_id)
    try:
        return await _concatenate(services, pool, state, final)
    finally:
        state.finishing.discard(final.public_id)


async def _concatenate(services: Services, pool: WorkerPool | None, state: UploadState,
                       final: Upload) -> bool:
    db, config = services.db, services.config
    current = await records.find_upload(db, final.public_id)
    if current is None or current.state != records.RECEIVING:
        return False
    parts = await records.uploads_by_ids(db, final.parts)
    ordered = [parts[p] for p in final.parts if p in parts]
    lengths = [p.length for p in ordered]
    if len(ordered) == len(final.parts) and all(n is not None for n in lengths):
        total = sum(n for n in lengths if n is not None)
        if current.length is None:
            await records.set_length(db, current, total)
    if len(ordered) != len(final.parts) or any(p.state != records.COMPLETE for p in ordered):
        return False
    part_paths = [store.upload_path(config, p.public_id) for p in ordered]
    total = sum(await asyncio.gather(*(asyncio.to_thread(store.size_on_disk, p)
                                       for p in part_paths)))
    await check_free_disk(config, total)
    final_path = store.upload_path(config, final.public_id)
    await store.run_blocking(store.concatenate, final_path, part_paths)
    head = await asyncio.to_thread(store.read_head, final_path, sniff.SNIFF_BYTES)
    verdict = sniff.sniff(head, complete=total < sniff.SNIFF_BYTES)
    if verdict.rejected:
        await reject_sniffed(services, current, verdict)
    async with state.locks.hold(final.public_id, None):
        done = await records.find_upload(db, final.public_id)
        assert done is not None
        await finish_upload(services, pool, state, done)
    for part in ordered:
        await asyncio.to_thread(store.remove, store.upload_path(config, part.public_id))
        await records.delete_upload(db, part.id)
    return True
