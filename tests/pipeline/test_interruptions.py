"""A job survives its worker being killed; an owner or admin can cancel it."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from server import keys, storage
from server.app import create_app
from tests.helpers import User, check_openapi, sign_up
from tests.pipeline.conftest import (
    finished,
    job_row,
    pipeline_config,
    submit,
    video,
    wait_for,
)
from tests.pipeline.hlsserve import decode_errors


async def running_with_progress(client: TestClient, owner: User, video_id: str) -> Any:
    """Wait until the job's worker is encoding (progress reported), return the job row."""
    await wait_for(client, owner, video_id,
                   lambda b: (b["progress"] or {}).get("percent", 0) >= 10, timeout=60)
    job = await job_row(client, video_id)
    assert job["status"] == "running" and job["worker_pid"], dict(job)
    return job


async def encoder_threads(pid: int) -> dict[int, tuple[int, int]]:
    """Thread id -> (nice, scheduling policy), once the encode pass has started its threads
    (proc(5): fields 19 and 41 of /proc/PID/task/TID/stat)."""
    deadline = time.monotonic() + 10
    while True:
        threads = {}
        for task in Path(f"/proc/{pid}/task").iterdir():
            try:
                fields = task.joinpath("stat").read_text().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue  # the thread ended meanwhile
            threads[int(task.name)] = (int(fields[16]), int(fields[38]))
        if len(threads) >= 4 or time.monotonic() > deadline:
            return threads
        await asyncio.sleep(0.05)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie is gone too (its parent has not reaped it yet).
    return "State:\tZ" in Path(f"/proc/{pid}/status").read_text()


async def test_killed_worker_is_retried_and_finishes(
    client: TestClient, owner: User, clip: Callable[[str], Path]
) -> None:
    video_id = await submit(client, owner, clip("long_480p.mp4"))
    job = await running_with_progress(client, owner, video_id)
    # Workers run below the web process's priority (worker_nice is 5 in these tests).
    assert os.getpriority(os.PRIO_PROCESS, job["worker_pid"]) == os.getpriority(
        os.PRIO_PROCESS, 0) + 5
    # So does every thread of the encode pass (rung threads, libx264's frame threads):
    # niceness and SCHED_IDLE are per thread on Linux, inherited by threads made later.
    # Only the parent watchdog, started before the worker lowers itself, may be left out.
    threads = await encoder_threads(job["worker_pid"])
    lowered = (os.getpriority(os.PRIO_PROCESS, 0) + 5, os.SCHED_IDLE)
    assert threads[job["worker_pid"]] == lowered
    assert len(threads) >= 4 and sum(t != lowered for t in threads.values()) <= 1, threads
    # Killed once the first segment of a rung is whole (a loaded machine may take a while).
    layout = storage.video_layout(client.app[keys.CONFIG], video_id)
    kept = layout.rendition_partial("360p") / "seg_00000.m4s"
    deadline = time.monotonic() + 60
    while not kept.exists():
        assert time.monotonic() < deadline, "no whole segment within 60 s"
        await asyncio.sleep(0.05)
    before = (await video(client, owner, video_id))["progress"]["percent"]
    os.kill(job["worker_pid"], signal.SIGKILL)
    body = await wait_for(client, owner, video_id,
                          lambda b: b["status"] == "uploaded", timeout=10)
    # The worker's own failure uses an attempt, but what it wrote stays for the retry:
    # the progress shown, and the whole segments of the renditions it was encoding.
    assert body["progress"]["percent"] >= before
    first_segment = (kept.stat().st_ino, kept.stat().st_mtime_ns)
    job = await job_row(client, video_id)
    # Back-off: 2 ** attempts seconds after the first failure.
    assert job["status"] == "queued" and job["run_after"] - time.time() > 1.0
    body = await wait_for(client, owner, video_id, finished, timeout=120)
    assert body["status"] == "ready", body
    job = await job_row(client, video_id)
    assert (job["status"], job["attempts"], job["interruptions"]) == ("done", 2, 0)
    assert "exited with code -9" in job["last_error"]
    # The retry went on from the kept segments rather than writing them again.
    again = layout.segment("360p", 0).stat()
    assert (again.st_ino, again.st_mtime_ns) == first_segment
    assert await decode_errors(str(layout.hls / "master.m3u8")) == ""


async def test_cancel_stops_the_worker_within_a_second(
    client: TestClient, owner: User, clip: Callable[[str], Path], openapi: dict[str, Any]
) -> None:
    video_id = await submit(client, owner, clip("long_480p.mp4"))
    job = await running_with_progress(client, owner, video_id)
    stranger = await sign_up(client, "stranger")
    resp = await client.post(f"/api/videos/{video_id}/cancel", headers=stranger.headers)
    assert resp.status == 403
    resp = await client.post(f"/api/videos/{video_id}/cancel")
    assert resp.status == 401

    started = time.monotonic()
    resp = await client.post(f"/api/videos/{video_id}/cancel", headers=owner.headers)
    assert resp.status == 200, await resp.text()
    assert time.monotonic() - started < 1.5
    body = await check_openapi(openapi, resp)
    assert (body["status"], body["error"]) == ("failed", "processing was cancelled")
    assert gone(job["worker_pid"])
    job = await job_row(client, video_id)
    assert job["status"] == "cancelled"
    config = client.app[keys.CONFIG]
    assert not storage.video_layout(config, video_id).hls.exists()
    assert not storage.video_layout(config, video_id).poster.exists()
    assert storage.original_path(config, video_id).exists()  # the upload itself is kept
    resp = await client.post(f"/api/videos/{video_id}/cancel", headers=owner.headers)
    assert resp.status == 409
    assert (await check_openapi(openapi, resp))["detail"] == "this video is not being processed"
    await asyncio.sleep(1.2)  # the dispatcher never picks a cancelled job up again
    assert (await job_row(client, video_id))["status"] == "cancelled"


async def test_cancel_a_queued_job(
    client: TestClient, owner: User, clip: Callable[[str], Path]
) -> None:
    busy = await submit(client, owner, clip("long_480p.mp4"))  # one worker: the next waits
    waiting = await submit(client, owner, clip("no_audio.mp4"))
    await running_with_progress(client, owner, busy)
    assert (await job_row(client, waiting))["status"] == "queued"
    resp = await client.post(f"/api/videos/{waiting}/cancel", headers=owner.headers)
    assert resp.status == 200
    assert (await resp.json())["error"] == "processing was cancelled"
    assert (await job_row(client, waiting))["status"] == "cancelled"
    body = await wait_for(client, owner, busy, finished, timeout=120)
    assert body["status"] == "ready"


async def test_deleting_a_video_stops_its_job(
    client: TestClient, owner: User, clip: Callable[[str], Path]
) -> None:
    video_id = await submit(client, owner, clip("long_480p.mp4"))
    job = await running_with_progress(client, owner, video_id)
    resp = await client.delete(f"/api/videos/{video_id}", headers=owner.headers)
    assert resp.status == 204
    deadline = time.monotonic() + 3
    while not gone(job["worker_pid"]):
        assert time.monotonic() < deadline, "the worker kept encoding a deleted video"
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    assert not storage.video_dir(client.app[keys.CONFIG], video_id).exists()
    assert await job_row(client, video_id) is None
    assert (await client.get("/healthz")).status == 200


async def test_transient_failures_give_up_after_max_attempts(
    aiohttp_client: Any, tmp_path: Path, clip: Callable[[str], Path]
) -> None:
    config = pipeline_config(tmp_path / "data", job_max_attempts=1)
    client = await aiohttp_client(create_app(config))
    owner = await sign_up(client, "owner")
    video_id = await submit(client, owner, clip("long_480p.mp4"))
    job = await running_with_progress(client, owner, video_id)
    os.kill(job["worker_pid"], signal.SIGKILL)
    body = await wait_for(client, owner, video_id, finished, timeout=10)
    assert body["status"] == "failed"
    assert body["error"] == "processing failed: the worker exited with code -9"
    job = await job_row(client, video_id)
    assert (job["status"], job["attempts"]) == ("failed", 1)
    # Not the upload's fault: its bytes are kept, the partial outputs are not.
    assert storage.original_path(config, video_id).exists()
    assert not storage.video_layout(config, video_id).hls.exists()
