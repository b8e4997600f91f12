"""A full disk, against the real server: uploads answer 507, and a transcode that runs out
of space stops with a clear reason, removes what it had not finished, waits without using
an attempt, and never touches a ladder that was already served.

The media and uploads folders live on a small tmpfs (through symbolic links from the data
directory, so an upload's rename into the media folder stays on one filesystem), and the
database stays on the real disk, as a careful administrator would place it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hashlib
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import m3u8
import pytest

from server import storage
from server.workers.queue import OUT_OF_SPACE
from tests.media.clips import Clip, make_clip
from tests.pipeline.conftest import pipeline_config
from tests.pipeline.hlsserve import decode_errors, fetch_ladder
from tests.pipeline.realserver import (
    Server,
    assert_continuous,
    finished,
    free_port,
    job_of,
    percent,
    poll,
    sign_in,
    submit_to_data_dir,
)

MiB = 1 << 20
TUS = {"Tus-Resumable": "1.0.0"}
# The top rung is copied (ready within a second), the 240p one encoded for some seconds.
LONG_CLIP = Clip(640, 360, seconds=60.0, gop=30,
                 options={"crf": "36", "preset": "superfast", "x264-params": "scenecut=0"})


@contextlib.contextmanager
def tmpfs(where: Path, size: int) -> Iterator[Path]:
    where.mkdir(parents=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.fail(f"a full-disk test needs a tmpfs it can fill, and mounting one failed "
                    f"(root and mount(8) are needed): {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", 40 * MiB) as disk:
        yield disk


def on_small_disk(tmp_path: Path, disk: Path, **settings: object) -> Server:
    data = tmp_path / "data"
    data.mkdir()
    for name in ("media", "uploads"):
        (disk / name).mkdir()
        (data / name).symlink_to(disk / name)
    config = pipeline_config(data, port=free_port(), segment_seconds=2.0, **settings)
    return Server(config)


def fill(disk: Path, leave: int = 0) -> Path:
    """Fill the disk until a write fails (ENOSPC), or until `leave` bytes are left."""
    filler = disk / "filler"
    with open(filler, "ab") as fh:
        for chunk in (MiB, 64 << 10, 4 << 10, 512):
            while os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - chunk >= leave:
                try:
                    fh.write(b"\0" * chunk)
                    fh.flush()
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC
                    break
    return filler


def digests(directory: Path) -> dict[str, str]:
    return {str(p.relative_to(directory)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def leftovers(config_root: Path) -> list[str]:
    return sorted(str(p) for p in config_root.rglob(".*"))


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("full-disk") / "remux_360p_60s.mp4", LONG_CLIP)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_uploads_answer_507_when_the_disk_fills(
    small_disk: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server = on_small_disk(tmp_path, small_disk)  # the free-space floor is 0
    try:
        await server.start(http)
        headers = await sign_in(http, server)
        free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
        # tus: an upload longer than the free space is refused at its creation.
        async with http.post(f"{server.url}/api/uploads", headers={
                **headers, **TUS, "Upload-Length": str(free + MiB)}) as resp:
            assert resp.status == 507, await resp.text()
            problem = await resp.json()
        assert resp.content_type == "application/problem+json"
        assert "short of disk space" in problem["detail"]
        # tus: one that fits is taken; once the disk is full, its next chunk is refused.
        async with http.post(f"{server.url}/api/uploads", headers={
                **headers, **TUS, "Upload-Length": str(2 * MiB)}) as resp:
            assert resp.status == 201, await resp.text()
            location = resp.headers["Location"]
        filler = fill(small_disk)
        async with http.patch(location, data=b"\0" * MiB, headers={
                **headers, **TUS, "Upload-Offset": "0",
                "Content-Type": "application/offset+octet-stream"}) as resp:
            assert resp.status == 507, await resp.text()
        # multipart: a file the disk cannot take is refused.
        form = aiohttp.FormData()
        form.add_field("title", "too big")
        form.add_field("file", b"\0" * MiB, filename="big.mp4", content_type="video/mp4")
        async with http.post(f"{server.url}/api/videos/upload", data=form,
                             headers=headers) as resp:
            assert resp.status == 507, await resp.text()
        filler.unlink()
        assert not leftovers(small_disk), "temporary files left behind"
        async with http.head(location, headers={**headers, **TUS}) as resp:
            assert resp.headers["Upload-Offset"] == "0"  # nothing half-written was kept
    finally:
        server.stop()


async def test_a_transcode_out_of_space_waits_and_never_touches_a_ready_ladder(
    small_disk: Path, tmp_path: Path, http: aiohttp.ClientSession, long_clip: Path
) -> None:
    server = on_small_disk(tmp_path, small_disk)  # the floor is 0: a real ENOSPC
    config = server.config
    try:
        await server.start(http)
        headers = await sign_in(http, server)
        admin = f"{server.url}/api/admin/storage"
        # A: ready before the disk fills; its files must not change.
        done_id, _ = await submit_to_data_dir(config, "owner", long_clip)
        await poll(http, f"{server.url}/api/videos/{done_id}", headers, finished, timeout=120)
        ready_files = digests(storage.video_dir(config, done_id))
        # B: playable (its copied 360p rung) and encoding 240p when the disk fills.
        video_id, video_key = await submit_to_data_dir(config, "owner", long_clip)
        url = f"{server.url}/api/videos/{video_id}"
        await poll(http, url, headers, lambda b: b["status"] == "ready", timeout=60)
        filler = fill(small_disk)
        deadline = time.monotonic() + 30
        while not (job_of(config, video_key)["last_error"] or "").startswith(OUT_OF_SPACE):
            assert time.monotonic() < deadline, job_of(config, video_key)
            await asyncio.sleep(0.05)
        job = job_of(config, video_key)
        assert job["status"] in ("queued", "running"), job
        assert "disk is full" in job["last_error"] and job["attempts"] <= 1, job
        assert job["interruptions"] >= 1
        body = await poll(http, url, headers, lambda b: True, timeout=5)
        assert body["status"] == "ready", body  # still playable: what it finished stays
        async with http.get(f"{url}/hls/master.m3u8") as resp:
            listed = {p.uri.split("/")[0] for p in m3u8.loads(await resp.text()).playlists}
        assert listed == {"360p", "audio"}
        layout = storage.video_layout(config, video_id)
        assert not layout.unfinished(), "partial outputs left behind"
        async with http.get(admin, headers=headers) as resp:
            assert resp.status == 200
            disk = await resp.json()
        assert disk["min_free_disk_bytes"] == 0 and disk["free_bytes"] < MiB
        assert disk["jobs_waiting_for_space"] in (0, 1)  # 0 while a retry is running
        assert digests(storage.video_dir(config, done_id)) == ready_files

        filler.unlink()  # room again: the job goes on and finishes
        body = await poll(http, url, headers, finished, timeout=120)
        assert body["status"] == "ready", body
        job = job_of(config, video_key)
        assert (job["status"], job["attempts"]) == ("done", 1), job
        master = f"{url}/hls/master.m3u8"
        assert await decode_errors(master) == ""
        (tmp_path / "ladder").mkdir()
        for rendition in await fetch_ladder(master, tmp_path / "ladder"):
            assert_continuous(rendition)
        assert digests(storage.video_dir(config, done_id)) == ready_files
        assert not leftovers(small_disk)
    finally:
        server.stop()


async def test_no_transcode_runs_below_the_floor(
    small_disk: Path, tmp_path: Path, http: aiohttp.ClientSession, long_clip: Path
) -> None:
    server = on_small_disk(tmp_path, small_disk, min_free_disk_bytes=8 * MiB)
    config = server.config
    try:
        await server.start(http)
        headers = await sign_in(http, server)
        admin = f"{server.url}/api/admin/storage"
        video_id, video_key = await submit_to_data_dir(config, "owner", long_clip)
        url = f"{server.url}/api/videos/{video_id}"
        await poll(http, url, headers, lambda b: b["status"] == "ready", timeout=60)
        # Free space falls below the floor while it encodes: it stops and says why.
        filler = fill(small_disk, leave=4 * MiB)
        deadline = time.monotonic() + 30
        while not (job_of(config, video_key)["last_error"] or "").startswith(OUT_OF_SPACE):
            assert time.monotonic() < deadline, job_of(config, video_key)
            await asyncio.sleep(0.05)
        job = job_of(config, video_key)
        assert "fell below the floor" in job["last_error"], job
        async with http.get(admin, headers=headers) as resp:
            disk = await resp.json()
        assert disk["min_free_disk_bytes"] == 8 * MiB and not disk["floor_met"]
        assert disk["jobs_waiting_for_space"] == 1
        # Below the floor nothing runs, however long it waits: no attempt is used.
        await asyncio.sleep(5)
        job = job_of(config, video_key)
        assert (job["status"], job["attempts"]) == ("queued", 0), job
        assert not storage.video_layout(config, video_id).unfinished()
        # Another upload waits too, as the floor is not met.
        waiting_id, waiting_key = await submit_to_data_dir(config, "owner", long_clip)
        await asyncio.sleep(2)
        assert job_of(config, waiting_key)["status"] == "queued"

        filler.unlink()
        for key in (video_key, waiting_key):
            deadline = time.monotonic() + 120
            while job_of(config, key)["status"] != "done":
                assert job_of(config, key)["status"] in ("queued", "running")
                assert time.monotonic() < deadline, job_of(config, key)
                await asyncio.sleep(0.1)
            assert job_of(config, key)["attempts"] == 1
        body = await poll(http, url, headers, finished, timeout=10)
        assert body["status"] == "ready" and percent(body) == 100
        async with http.get(admin, headers=headers) as resp:
            disk = await resp.json()
        assert disk["floor_met"] and disk["jobs_waiting_for_space"] == 0
        assert waiting_id
    finally:
        server.stop()

