"""The job queue's SQL: queueing, claiming, progress, renditions, the end states of a job.

A job moves queued -> running -> done | failed | cancelled, or back to queued: after a
failure of its own (with back-off; it used one of its attempts) or an interruption that
was not its doing (the server stopped under it, the disk filled), which uses no attempt
and is counted apart. A requeued job keeps what it wrote (the next run goes on from it)
and its video keeps its progress; a video already playable stays `ready`. A video moves
uploaded -> processing -> ready (as soon as one rendition is playable) or failed.

Processing again (`reprocess`) writes a new generation of the outputs (media/layout.py).
For a failed video the new generation is served at once and the job runs as a first one.
For a ready video the job is a rebuild: the video stays `ready` on its old generation,
the new renditions are recorded only when the whole ladder is done (`switch`), and a
rebuild that fails or is cancelled leaves the video as it was.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from media.hls import RenditionInfo
from server.db import Database, Row
from server.ids import now, utc_now_iso
from server.statuses import JOB_STATUSES, JobEnd, JobStatus, VideoStatus

_TOUCH = "updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
# Interruptions after which a job is given up: one that somehow keeps stopping the server.
MAX_INTERRUPTIONS = 20
OUT_OF_SPACE = "out of disk space"  # how a job's last_error begins when the disk was full


@dataclass(frozen=True)
class Claimed:
    job_id: int
    video_id: int
    public_id: str
    owner_id: int
    attempts: int
    max_attempts: int
    interruptions: int = 0
    generation: int = 0  # of the outputs this job writes
    rebuild: bool = False  # of a ready video, which serves an older generation meanwhile


async def enqueue(db: Database, video_id: int, max_attempts: int,
                  queued_per_owner: int = 20) -> int:
    """The video is `uploaded` and its transcode job queued (or held, when its owner has
    `queued_per_owner` queued already); returns the job's id."""
    async with db.transaction() as conn:
        await conn.execute(f"UPDATE videos SET status = 'uploaded', {_TOUCH} WHERE id = ?",
                           (video_id,))
        cursor = await conn.execute(
            "INSERT INTO jobs(video_id, kind, max_attempts, held) VALUES (?, 'transcode', ?, ?)",
            (video_id, max_attempts, await _held(conn, video_id, queued_per_owner)))
    job_id = cursor.lastrowid
    assert job_id is not None
    return job_id


# Due, unheld jobs, numbered within their owner (oldest first), with how many of that
# owner's jobs run and when the owner's last job started. Taken: each owner's first jobs
# while the owner is under its running cap, owners served longest ago first (round-robin),
# so one user's queue of long jobs never keeps another's short one waiting for a slot.
_CLAIMABLE = """
WITH due AS (
    SELECT j.id, v.owner_id,
           row_number() OVER (PARTITION BY v.owner_id ORDER BY j.id) AS place
    FROM jobs j JOIN videos v ON v.id = j.video_id
    WHERE j.status = 'queued' AND j.held = 0 AND j.run_after <= :now
), owners AS (
    SELECT v.owner_id, sum(j.status = 'running') AS running, max(j.started_at) AS served
    FROM jobs j JOIN videos v ON v.id = j.video_id
    WHERE v.owner_id IN (SELECT owner_id FROM due) GROUP BY v.owner_id
)
SELECT due.id FROM due JOIN owners USING (owner_id)
WHERE due.place <= :per_owner - owners.running
ORDER BY due.place, coalesce(owners.served, ''), due.id
LIMIT :limit
"""


async def claim(db: Database, limit: int, per_owner: int = 1) -> list[Claimed]:
    """Take up to `limit` due jobs in one write transaction, fairly: round-robin by owner,
    oldest first within an owner, at most `per_owner` running jobs of one owner."""
    if limit <= 0:
        return []
    async with db.transaction() as conn:
        cursor = await conn.execute(_CLAIMABLE, {"now": now(), "per_owner": per_owner,
                                                 "limit": limit})
        ids = [row["id"] for row in await cursor.fetchall()]
        claimed = []
        for job_id in ids:
            cursor = await conn.execute(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, worker_pid = NULL,"
                " heartbeat_at = ?, started_at = ? WHERE id = ?"
                " RETURNING id, video_id, attempts, max_attempts, interruptions, generation",
                (now(), utc_now_iso(), job_id))
            job = await cursor.fetchone()
            assert job is not None
            async with conn.execute(
                    "SELECT public_id, owner_id, generation FROM videos WHERE id = ?",
                    (job["video_id"],)) as cur:
                video = await cur.fetchone()
            assert video is not None  # jobs.video_id is ON DELETE CASCADE
            claimed.append(claimed_job(job, video))
    return claimed


async def release_held(db: Database, per_owner: int) -> int:
    """Held jobs join the queue as their owner's queued jobs drop below `per_owner`
    (oldest first); returns how many did."""
    cursor = await db.write(
        "UPDATE jobs SET held = 0 WHERE id IN (SELECT id FROM (SELECT j.id, j.held,"
        " row_number() OVER (PARTITION BY v.owner_id ORDER BY j.held, j.id) AS place"
        " FROM jobs j JOIN videos v ON v.id = j.video_id WHERE j.status = 'queued')"
        " WHERE held = 1 AND place <= ?)", (per_owner,))
    return cursor.rowcount


async def _held(conn: Any, video_id: int, per_owner: int) -> int:
    """1 when the video's owner already has `per_owner` jobs queued: the new one is held."""
    cursor = await conn.execute(
        "SELECT count(*) >= ? AS full FROM jobs j JOIN videos v ON v.id = j.video_id"
        " WHERE j.status = 'queued' AND v.owner_id = (SELECT owner_id FROM videos"
        " WHERE id = ?)", (per_owner, video_id))
    row = await cursor.fetchone()
    return 1 if row is not None and row["full"] else 0


def claimed_job(job: Row, video: Row) -> Claimed:
    """`job`: id, video_id, attempts, max_attempts, interruptions, generation;
    `video`: public_id, owner_id, generation."""
    return Claimed(job["id"], job["video_id"], video["public_id"], video["owner_id"],
                   job["attempts"], job["max_attempts"], job["interruptions"],
                   job["generation"], job["generation"] > video["generation"])


async def set_worker(db: Database, job_id: int, pid: int | None) -> None:
    await db.write("UPDATE jobs SET worker_pid = ?, heartbeat_at = ? WHERE id = ?",
                   (pid, now(), job_id))


async def set_video_status(db: Database, video_id: int, status: VideoStatus,
                           error: str | None = None) -> None:
    await db.write(f"UPDATE videos SET status = ?, error = ?, {_TOUCH} WHERE id = ?",
                   (status, error, video_id))


async def start_processing(db: Database, video_id: int) -> bool:
    """The video is `processing`, unless it is playable already (it stays `ready`, so its
    viewers keep it while the rest is made). True when its status changed."""
    cursor = await db.write(
        f"UPDATE videos SET status = 'processing', error = NULL, {_TOUCH}"
        " WHERE id = ? AND status != 'ready'", (video_id,))
    return cursor.rowcount == 1


async def save_progress(db: Database, job: Claimed, progress: dict[str, Any]) -> bool:
    """False when the video no longer exists (deleted while it was being processed)."""
    text = json.dumps(progress, separators=(",", ":"))
    async with db.transaction() as conn:
        await conn.execute("UPDATE jobs SET progress = ?, heartbeat_at = ? WHERE id = ?",
                           (text, now(), job.job_id))
        cursor = await conn.execute("UPDATE videos SET progress = ? WHERE id = ?",
                                    (text, job.video_id))
        return cursor.rowcount == 1


async def video_exists(db: Database, video_id: int) -> bool:
    return await db.fetch_value("SELECT 1 FROM videos WHERE id = ?", (video_id,)) is not None


async def save_probe(db: Database, job: Claimed, duration: float, width: int | None,
                     height: int | None, media_type: str) -> None:
    await db.write(f"UPDATE videos SET duration = ?, width = ?, height = ?, original_mime = ?,"
                   f" {_TOUCH} WHERE id = ?", (duration, width, height, media_type, job.video_id))


_INSERT_RENDITION = (
    "INSERT OR REPLACE INTO renditions(video_id, name, kind, width, height, frame_rate,"
    " codecs, bandwidth, average_bandwidth, segments, duration) VALUES (?,?,?,?,?,?,?,?,?,?,?)")


def _rendition_values(video_id: int, info: RenditionInfo) -> tuple[Any, ...]:
    return (video_id, info.name, info.kind, info.width, info.height, info.frame_rate,
            info.codecs, info.bandwidth, info.average_bandwidth, info.segments, info.duration)


async def add_rendition(db: Database, job: Claimed, info: RenditionInfo,
                        playable: bool) -> bool:
    """Record a finished rendition; when `playable`, make the video ready if it is not yet.

    Returns True when this call turned the video ready.
    """
    async with db.transaction() as conn:
        await conn.execute(_INSERT_RENDITION, _rendition_values(job.video_id, info))
        if not playable:
            return False
        cursor = await conn.execute(
            f"UPDATE videos SET status = 'ready', error = NULL, {_TOUCH},"
            " published_at = COALESCE(published_at, ?) WHERE id = ? AND status != 'ready'",
            (utc_now_iso(), job.video_id),
        )
        return cursor.rowcount == 1


async def finish(db: Database, job: Claimed, progress: dict[str, Any],
                 cpu_seconds: float | None = None) -> bool:
    """The job is done; returns True when this also turned the video ready."""
    text = json.dumps(progress, separators=(",", ":"))
    async with db.transaction() as conn:
        await conn.execute(
            # last_error stays: what made an earlier attempt fail, if one did.
            "UPDATE jobs SET status = 'done', progress = ?, worker_pid = NULL, finished_at = ?,"
            " cpu_seconds = ? WHERE id = ?", (text, utc_now_iso(), cpu_seconds, job.job_id))
        cursor = await conn.execute(
            f"UPDATE videos SET status = 'ready', error = NULL, progress = ?, {_TOUCH},"
            " published_at = COALESCE(published_at, ?) WHERE id = ? AND status != 'ready'",
            (text, utc_now_iso(), job.video_id))
        turned = cursor.rowcount == 1
        await conn.execute("UPDATE videos SET progress = ? WHERE id = ?", (text, job.video_id))
    return turned


async def end_job(db: Database, job: Claimed, status: JobEnd, reason: str) -> None:
    """failed or cancelled: the video is failed with `reason`; its renditions are gone."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE jobs SET status = ?, last_error = ?, worker_pid = NULL, finished_at = ?"
            " WHERE id = ?", (status, reason, utc_now_iso(), job.job_id))
        await conn.execute("DELETE FROM renditions WHERE video_id = ?", (job.video_id,))
        await conn.execute(
            f"UPDATE videos SET status = 'failed', error = ?, progress = NULL, {_TOUCH}"
            " WHERE id = ?", (reason, job.video_id))


async def requeue(db: Database, job: Claimed, error: str, delay: float, *,
                  interrupted: bool = False, shown: str | None = None) -> bool:
    """Run the job again after `delay` seconds, going on from what it wrote. `interrupted`:
    not the job's fault, so the attempt it was using is given back and the interruption
    counted instead. `shown` becomes the video's error while it waits. True when the video
    went back to `uploaded` (a video that is `ready` stays so)."""
    given_back = 1 if interrupted else 0
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE jobs SET status = 'queued', last_error = ?, worker_pid = NULL,"
            " run_after = ?, attempts = max(0, attempts - ?), interruptions = interruptions + ?"
            " WHERE id = ?", (error, now() + delay, given_back, given_back, job.job_id))
        cursor = await conn.execute(
            f"UPDATE videos SET status = 'uploaded', error = ?, {_TOUCH}"
            " WHERE id = ? AND status != 'ready'", (shown, job.video_id))
        return cursor.rowcount == 1


async def interrupted(db: Database) -> list[tuple[Claimed, int | None]]:
    """Jobs left `running` by a previous process (at start-up no worker of ours exists),
    with the pid of the worker each had."""
    rows = await db.fetch_all(
        "SELECT jobs.id, jobs.video_id, jobs.attempts, jobs.max_attempts, jobs.interruptions,"
        " jobs.generation, jobs.worker_pid, videos.public_id, videos.owner_id,"
        " videos.generation AS serving"
        " FROM jobs JOIN videos ON videos.id = jobs.video_id"
        " WHERE jobs.status = 'running' ORDER BY jobs.id")
    return [(Claimed(r["id"], r["video_id"], r["public_id"], r["owner_id"], r["attempts"],
                     r["max_attempts"], r["interruptions"], r["generation"],
                     r["generation"] > r["serving"]), r["worker_pid"]) for r in rows]


async def cancel_queued(db: Database, video_id: int, reason: str) -> bool | None:
    """Cancel the video's job if it has not started: True when there was one (the video is
    failed), False when it was a rebuild (the video stays as it was), None when none."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE jobs SET status = 'cancelled', last_error = ?, finished_at = ?"
            " WHERE video_id = ? AND status = 'queued' RETURNING generation",
            (reason, utc_now_iso(), video_id))
        cancelled = await cursor.fetchone()
        if cancelled is None:
            return None
        cursor = await conn.execute(
            f"UPDATE videos SET status = 'failed', error = ?, progress = NULL, {_TOUCH}"
            " WHERE id = ? AND generation = ?", (reason, video_id, cancelled["generation"]))
        if cursor.rowcount == 1:
            return True
        await conn.execute(f"UPDATE videos SET error = ?, progress = NULL, {_TOUCH} WHERE id = ?",
                           (rebuild_ended(reason), video_id))
    return False


def rebuild_ended(reason: str) -> str:
    """The error a ready video shows when processing it again did not finish."""
    return f"processing again did not finish ({reason}); the previous version still plays"


async def end_rebuild(db: Database, job: Claimed, status: JobEnd, reason: str) -> None:
    """A rebuild failed or was cancelled: the video keeps its ladder, and says so."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE jobs SET status = ?, last_error = ?, worker_pid = NULL, finished_at = ?"
            " WHERE id = ?", (status, reason, utc_now_iso(), job.job_id))
        await conn.execute(f"UPDATE videos SET error = ?, progress = NULL, {_TOUCH} WHERE id = ?",
                           (rebuild_ended(reason), job.video_id))


async def switch(db: Database, job: Claimed, renditions: list[RenditionInfo],
                 progress: dict[str, Any], cpu_seconds: float | None,
                 remove_after: float) -> int | None:
    """A rebuild is done: in one transaction the video's renditions become the new ones and
    it serves the new generation. The generation it served before is retired (removed after
    `remove_after`, a time.time()). Returns that generation, or None when the video is gone."""
    text = json.dumps(progress, separators=(",", ":"))
    async with db.transaction() as conn:
        cursor = await conn.execute("SELECT generation AS old FROM videos WHERE id = ?",
                                    (job.video_id,))
        row = await cursor.fetchone()
        if row is None:
            return None
        await conn.execute(
            f"UPDATE videos SET generation = ?, error = NULL, progress = ?, {_TOUCH}"
            " WHERE id = ?", (job.generation, text, job.video_id))
        await conn.execute(
            "UPDATE jobs SET status = 'done', progress = ?, worker_pid = NULL, finished_at = ?,"
            " cpu_seconds = ? WHERE id = ?", (text, utc_now_iso(), cpu_seconds, job.job_id))
        await conn.execute("DELETE FROM renditions WHERE video_id = ?", (job.video_id,))
        for info in renditions:
            await conn.execute(_INSERT_RENDITION, _rendition_values(job.video_id, info))
        await conn.execute(
            "INSERT OR REPLACE INTO retired_generations(video_id, generation, remove_after)"
            " VALUES (?, ?, ?)", (job.video_id, row["old"], remove_after))
    return int(row["old"])


async def reprocess(db: Database, video_id: int, max_attempts: int,
                    queued_per_owner: int = 20) -> Claimed | None:
    """Queue the video's processing again, from its original, into a new generation; None
    when a job of the video is queued or running already. A failed video serves the new
    generation at once (it had nothing to serve) and goes back to `uploaded`; a ready video
    is rebuilt while it keeps playing."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "SELECT 1 FROM jobs WHERE video_id = ? AND status IN ('queued', 'running')",
            (video_id,))
        if await cursor.fetchone() is not None:
            return None
        cursor = await conn.execute(
            "SELECT v.public_id, v.owner_id, v.status, v.generation, max(v.generation,"
            " coalesce((SELECT max(generation) FROM jobs WHERE video_id = v.id), 0)) + 1"
            " AS next FROM videos v WHERE v.id = ?", (video_id,))
        video = await cursor.fetchone()
        assert video is not None
        rebuild = video["status"] == "ready"
        if not rebuild:
            await conn.execute(
                f"UPDATE videos SET status = 'uploaded', error = NULL, progress = NULL,"
                f" generation = ?, {_TOUCH} WHERE id = ?", (video["next"], video_id))
            await conn.execute("DELETE FROM renditions WHERE video_id = ?", (video_id,))
        else:
            await conn.execute(f"UPDATE videos SET error = NULL, progress = NULL, {_TOUCH}"
                               " WHERE id = ?", (video_id,))
        cursor = await conn.execute(
            "INSERT INTO jobs(video_id, kind, max_attempts, generation, held)"
            " VALUES (?, 'transcode', ?, ?, ?)", (video_id, max_attempts, video["next"],
                                                 await _held(conn, video_id, queued_per_owner)))
        job_id = cursor.lastrowid
        assert job_id is not None
    return Claimed(job_id, video_id, video["public_id"], video["owner_id"], 0, max_attempts,
                   0, video["next"], rebuild)


async def failed_videos(db: Database) -> list[int]:
    return [int(r["id"]) for r in await db.fetch_all(
        "SELECT id FROM videos WHERE status = 'failed' ORDER BY id")]


async def due_retired(db: Database, at: float) -> list[tuple[int, str, int]]:
    """Retired generations whose time is up: (video id, public id, generation)."""
    rows = await db.fetch_all(
        "SELECT r.video_id, v.public_id, r.generation FROM retired_generations r"
        " JOIN videos v ON v.id = r.video_id WHERE r.remove_after <= ?"
        " ORDER BY r.remove_after LIMIT 100", (at,))
    return [(int(r["video_id"]), str(r["public_id"]), int(r["generation"])) for r in rows]


async def forget_retired(db: Database, video_id: int, generation: int) -> None:
    await db.write("DELETE FROM retired_generations WHERE video_id = ? AND generation = ?",
                   (video_id, generation))


async def running_job(db: Database, video_id: int) -> int | None:
    value = await db.fetch_value(
        "SELECT id FROM jobs WHERE video_id = ? AND status = 'running' ORDER BY id DESC LIMIT 1",
        (video_id,))
    return int(value) if value is not None else None


async def waiting_for_space(db: Database) -> int:
    """Queued jobs whose last run stopped because the disk was full."""
    value = await db.fetch_value(
        "SELECT count(*) FROM jobs WHERE status = 'queued' AND last_error LIKE ?",
        (OUT_OF_SPACE + "%",))
    return int(value or 0)


async def counts(db: Database) -> dict[JobStatus, int]:
    rows = await db.fetch_all("SELECT status, count(*) AS n FROM jobs GROUP BY status")
    found = {row["status"]: int(row["n"]) for row in rows}
    return {status: found.get(status, 0) for status in JOB_STATUSES}
