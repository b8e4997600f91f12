"""The fair queue: round-robin by owner, oldest first within an owner, at most
`jobs_running_per_user` running jobs of one owner, jobs past `jobs_queued_per_user` held
(their uploads succeed); then two users and two job slots on the real pool, where one
user's long jobs never keep the other's short clip waiting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from server import keys, videos
from server.app import create_app
from server.config import Config
from server.db import Database
from server.workers import queue
from tests.helpers import sign_up
from tests.pipeline.conftest import finished, job_row, pipeline_config, submit, wait_for


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(tmp_path / "queue.sqlite3")
    await database.migrate()
    for user_id, name in ((1, "ann"), (2, "bob"), (3, "cat")):
        await database.write("INSERT INTO users(id, username, password_hash, display_name)"
                             " VALUES (?, ?, 'x', ?)", (user_id, name, name))
        await database.write("INSERT INTO channels(id, public_id, owner_id, handle,"
                             " display_name) VALUES (?, ?, ?, ?, ?)",
                             (user_id, f"channel{user_id:05d}", user_id, name, name))
    yield database
    await database.close()


async def queue_jobs(db: Database, owner: int, count: int, queued_per_owner: int = 20
                     ) -> list[int]:
    ids = []
    for n in range(count):
        row = await videos.create_video(db, owner, owner, f"{owner}-{n}")
        ids.append(await queue.enqueue(db, row["id"], 3, queued_per_owner))
    return ids


async def test_jobs_are_taken_round_robin_by_owner(db: Database) -> None:
    ann = await queue_jobs(db, 1, 3)  # ann uploads three videos first
    bob = await queue_jobs(db, 2, 2)
    cat = await queue_jobs(db, 3, 1)
    # Three slots: one job of each owner, oldest first, not ann's three.
    first = [job.job_id for job in await queue.claim(db, 3, per_owner=1)]
    assert first == [ann[0], bob[0], cat[0]]
    # Nobody may run a second job while their first runs, however many slots are free.
    assert await queue.claim(db, 5, per_owner=1) == []
    await db.write("UPDATE jobs SET status = 'done' WHERE id IN (?, ?)", (ann[0], bob[0]))
    # Both finished: the owner served longest ago goes first (ann started before bob).
    assert [j.job_id for j in await queue.claim(db, 1, per_owner=1)] == [ann[1]]
    assert [j.job_id for j in await queue.claim(db, 1, per_owner=1)] == [bob[1]]
    assert await queue.claim(db, 1, per_owner=1) == []
    # With a cap of two, ann's last job may run beside her second.
    assert [j.job_id for j in await queue.claim(db, 2, per_owner=2)] == [ann[2]]


async def test_a_newcomer_goes_before_a_long_queue(db: Database) -> None:
    ann = await queue_jobs(db, 1, 10)
    assert [j.job_id for j in await queue.claim(db, 1)] == [ann[0]]
    await db.write("UPDATE jobs SET status = 'done' WHERE id = ?", (ann[0],))
    bob = await queue_jobs(db, 2, 1)
    # ann's next job is older, but bob has not been served yet.
    assert [j.job_id for j in await queue.claim(db, 1)] == [bob[0]]


async def test_jobs_past_the_queued_cap_are_held_and_join_in_order(db: Database) -> None:
    ann = await queue_jobs(db, 1, 5, queued_per_owner=2)
    held = [row["id"] for row in await db.fetch_all(
        "SELECT id FROM jobs WHERE held = 1 ORDER BY id")]
    assert held == ann[2:]  # every upload succeeded; three of its jobs wait apart
    assert await queue.release_held(db, 2) == 0  # two are queued: no room yet
    (running,) = await queue.claim(db, 1)
    assert running.job_id == ann[0]
    assert await queue.release_held(db, 2) == 1  # one left the queue: the oldest joins
    assert [row["id"] for row in await db.fetch_all(
        "SELECT id FROM jobs WHERE held = 1 ORDER BY id")] == ann[3:]
    await db.write("UPDATE jobs SET status = 'done' WHERE id = ?", (ann[0],))
    assert [j.job_id for j in await queue.claim(db, 1)] == [ann[1]]  # held jobs never jump


def test_two_job_slots_on_two_cores_by_default(tmp_path: Path) -> None:
    config = pipeline_config(tmp_path / "data", workers=0)
    assert config.worker_count >= 2


async def test_another_users_short_clip_starts_while_one_users_long_jobs_wait(
    aiohttp_client: Any, tmp_path: Path, clip: Callable[[str], Path],
) -> None:
    config: Config = pipeline_config(tmp_path / "data", workers=2)
    client: TestClient = await aiohttp_client(create_app(config))
    ann = await sign_up(client, "ann")
    bob = await sign_up(client, "bob")
    long_jobs = [await submit(client, ann, clip("long_480p.mp4")) for _ in range(3)]
    await wait_for(client, ann, long_jobs[0],
                   lambda b: (b["progress"] or {}).get("percent", 0) > 5, timeout=60)
    uploaded = time.monotonic()
    short = await submit(client, bob, clip("no_audio.mp4"))
    running_at_once = 0
    started = None
    while True:
        rows = await client.app[keys.DB].fetch_all(
            "SELECT v.owner_id FROM jobs j JOIN videos v ON v.id = j.video_id"
            " WHERE j.status = 'running'")
        job = await job_row(client, short)
        if started is None and job["status"] in ("running", "done"):
            started = time.monotonic() - uploaded
        ann_running = sum(1 for row in rows if row["owner_id"] == ann.id)
        running_at_once = max(running_at_once, ann_running)
        if job["status"] == "done":
            break
        await asyncio.sleep(0.05)
    assert started is not None and started < 5.0, started  # the issue asks under 30 s
    states = [(await job_row(client, v))["status"] for v in long_jobs]
    assert states[0] in ("running", "done") and "queued" in states[1:]
    body = await wait_for(client, bob, short, finished, timeout=60)
    assert body["status"] == "ready"
    assert running_at_once <= 1
