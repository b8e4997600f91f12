"""Processing a video again (POST /api/videos/{id}/reprocess): a failed video from its
stored original, a ready one after a ladder change while it keeps playing its old
ladder, a rebuild that is cancelled, and an administrator's "every failed video"."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import m3u8
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from server import keys, storage
from server.app import create_app
from tests.helpers import User, check_openapi, sign_up
from tests.pipeline.conftest import finished, job_row, pipeline_config, submit, video, wait_for
from tests.pipeline.hlsserve import decode_errors, fetch_ladder
from tests.pipeline.test_interruptions import running_with_progress


async def failed_by_cancel(client: TestClient, owner: User, source: Path) -> str:
    video_id = await submit(client, owner, source)
    await running_with_progress(client, owner, video_id)
    resp = await client.post(f"/api/videos/{video_id}/cancel", headers=owner.headers)
    assert resp.status == 200 and (await resp.json())["status"] == "failed"
    return video_id


def rebuilt(body: dict[str, Any]) -> bool:
    return finished(body) and not body["processing_again"]


async def variants(client: TestClient, url: str) -> list[str]:
    resp = await client.get(url)
    assert resp.status == 200, (url, resp.status)
    # The video variants (an audio-only variant is listed too, for players that want one).
    return [p.uri for p in m3u8.loads(await resp.text()).playlists
            if not p.uri.startswith("audio/")]


async def test_a_failed_video_is_processed_again_from_its_original(
    client: TestClient, owner: User, clip: Callable[[str], Path], openapi: dict[str, Any],
    tmp_path: Path,
) -> None:
    video_id = await failed_by_cancel(client, owner, clip("long_480p.mp4"))
    url = f"/api/videos/{video_id}/reprocess"
    stranger = await sign_up(client, "stranger")
    assert (await client.post(url)).status == 401
    resp = await client.post(url, headers=stranger.headers)
    assert resp.status == 403
    await check_openapi(openapi, resp)

    resp = await client.post(url, headers=owner.headers)
    assert resp.status == 202, await resp.text()
    body = await check_openapi(openapi, resp)
    assert (body["status"], body["error"], body["streams"]["hls"]) == ("uploaded", None, None)
    # One job at a time: a second request while it is queued or running is refused.
    resp = await client.post(url, headers=owner.headers)
    assert resp.status == 409
    assert "being" in (await check_openapi(openapi, resp))["detail"]

    body = await wait_for(client, owner, video_id, finished, timeout=120)
    assert body["status"] == "ready", body
    # The new run's outputs have URLs of their own (generation 1).
    assert body["streams"]["hls"] == f"/api/videos/{video_id}/hls/master.m3u8?g=1"
    assert body["poster"].endswith("/poster.jpg?g=1")
    assert all(p["url"].endswith("?g=1") for p in body["streams"]["progressive"])
    master = str(client.make_url(body["streams"]["hls"]))
    ladder = await fetch_ladder(master, tmp_path)
    assert sorted(r.name for r in ladder) == ["240p", "360p", "audio"]
    for rendition in ladder:  # every URI a playlist lists carries the generation on
        assert all(s.uri.endswith("?g=1") for s in rendition.playlist.segments)
    assert await decode_errors(master) == ""
    job = await job_row(client, video_id)
    assert (job["status"], job["generation"]) == ("done", 1)
    config = client.app[keys.CONFIG]
    assert storage.video_layout(config, video_id, 1).master.is_file()
    assert not storage.video_layout(config, video_id).hls.exists()
    vtt = await client.get(body["storyboard"])
    assert vtt.status == 200 and "sprite_000.jpg?g=1#xywh=" in await vtt.text()
    # A generation that does not exist, or a malformed one, is a 404 problem.
    for bad in ("2", "-1", "x", "1" * 12):
        resp = await client.get(f"/api/videos/{video_id}/hls/master.m3u8?g={bad}")
        assert resp.status == 404, bad
        assert resp.content_type == "application/problem+json"


async def test_a_ready_video_plays_its_old_ladder_until_the_new_one_is_complete(
    aiohttp_client: Any, tmp_path: Path, clip: Callable[[str], Path],
) -> None:
    data = tmp_path / "data"
    first = await aiohttp_client(create_app(pipeline_config(data, ladder="240")))
    owner = await sign_up(first, "owner")
    video_id = await submit(first, owner, clip("long_480p.mp4"))
    before = await wait_for(first, owner, video_id, finished, timeout=120)
    assert before["status"] == "ready"
    old_master = before["streams"]["hls"]
    assert old_master == f"/api/videos/{video_id}/hls/master.m3u8"
    await first.close()

    # The operator adds a rung and restarts; the owner has the video processed again.
    client = await aiohttp_client(create_app(pipeline_config(
        data, ladder="360,240", replaced_ladder_seconds=3600)))
    resp = await client.post(f"/api/videos/{video_id}/reprocess", headers=owner.headers)
    assert resp.status == 202, await resp.text()
    body = await resp.json()
    assert (body["status"], body["processing_again"]) == ("ready", True)
    assert body["streams"]["hls"] == old_master
    # While the new ladder is made the video stays ready, on its old ladder, for everyone.
    seen_running = False
    while True:
        body = await video(client, owner, video_id)
        if rebuilt(body):
            break
        assert body["status"] == "ready" and body["streams"]["hls"] == old_master, body
        assert await variants(client, old_master) == ["240p/index.m3u8"]
        anonymous = await client.get(f"/api/videos/{video_id}")
        assert (await anonymous.json())["streams"]["hls"] == old_master
        job = await job_row(client, video_id)
        seen_running |= job["status"] == "running"
        await asyncio.sleep(0.2)
    assert seen_running
    # Then it switches: new URLs, the new ladder, its renditions recorded at once.
    new_master = body["streams"]["hls"]
    assert new_master == f"{old_master}?g=1"
    assert await variants(client, new_master) == ["360p/index.m3u8?g=1",
                                                 "240p/index.m3u8?g=1"]
    assert [p["name"] for p in body["streams"]["progressive"]] == ["360p", "240p"]
    assert await decode_errors(str(client.make_url(new_master))) == ""
    segment = await client.get(f"/api/videos/{video_id}/hls/360p/seg_00000.m4s?g=1")
    assert segment.status == 200 and "immutable" in segment.headers["Cache-Control"]
    # A player that began with the old ladder keeps it, until it is retired.
    assert await variants(client, old_master) == ["240p/index.m3u8"]
    assert await decode_errors(str(client.make_url(old_master))) == ""
    db = client.app[keys.DB]
    retired = await db.fetch_one("SELECT generation, remove_after FROM retired_generations")
    assert retired["generation"] == 0
    assert 3500 < retired["remove_after"] - time.time() <= 3600
    pool = client.app[keys.WORKERS]
    assert await pool.retire() == 0  # not due yet
    await db.write("UPDATE retired_generations SET remove_after = 0")
    assert await pool.retire() == 1
    config = client.app[keys.CONFIG]
    assert not storage.video_layout(config, video_id).hls.exists()
    assert not storage.video_layout(config, video_id).poster.exists()
    assert storage.original_path(config, video_id).is_file()
    await asyncio.sleep(1.1)  # a playlist read from disk is trusted for a second
    resp = await client.get(old_master)
    assert resp.status == 404
    assert await variants(client, new_master) != []
    job = await job_row(client, video_id)
    assert (job["status"], job["generation"], job["attempts"]) == ("done", 1, 1)


async def test_a_cancelled_rebuild_leaves_the_video_as_it_was(
    client: TestClient, owner: User, clip: Callable[[str], Path], openapi: dict[str, Any],
) -> None:
    video_id = await submit(client, owner, clip("long_480p.mp4"))
    before = await wait_for(client, owner, video_id, finished, timeout=120)
    assert before["status"] == "ready"
    resp = await client.post(f"/api/videos/{video_id}/reprocess", headers=owner.headers)
    assert resp.status == 202
    job = await running_with_progress(client, owner, video_id)
    assert job["generation"] == 1
    config = client.app[keys.CONFIG]
    assert storage.video_layout(config, video_id, 1).out.is_dir()
    resp = await client.post(f"/api/videos/{video_id}/cancel", headers=owner.headers)
    assert resp.status == 200, await resp.text()
    body = await check_openapi(openapi, resp)
    assert body["status"] == "ready" and not body["processing_again"]
    assert "processing again did not finish (processing was cancelled)" in body["error"]
    assert body["streams"] == before["streams"]
    assert not storage.video_layout(config, video_id, 1).out.exists()
    assert await variants(client, before["streams"]["hls"]) == ["360p/index.m3u8",
                                                                "240p/index.m3u8"]
    assert (await job_row(client, video_id))["status"] == "cancelled"
    # Again: a new generation (never one a cancelled run used), this time to the end.
    resp = await client.post(f"/api/videos/{video_id}/reprocess", headers=owner.headers)
    assert resp.status == 202
    body = await wait_for(client, owner, video_id, rebuilt, timeout=120)
    assert (body["status"], body["error"]) == ("ready", None)
    assert body["streams"]["hls"].endswith("?g=2")


async def test_an_admin_processes_every_failed_video_again(
    client: TestClient, owner: User, clip: Callable[[str], Path], openapi: dict[str, Any],
) -> None:
    busy = await submit(client, owner, clip("long_480p.mp4"))  # one worker: the rest wait
    await running_with_progress(client, owner, busy)
    waiting = [await submit(client, owner, clip(name))
               for name in ("no_audio.mp4", "audio_only.m4a")]
    for video_id in waiting:
        resp = await client.post(f"/api/videos/{video_id}/cancel", headers=owner.headers)
        assert (await resp.json())["status"] == "failed"
    gone = await submit(client, owner, clip("vfr.mp4"))  # failed, its original lost
    resp = await client.post(f"/api/videos/{gone}/cancel", headers=owner.headers)
    assert (await resp.json())["status"] == "failed"
    storage.original_path(client.app[keys.CONFIG], gone).unlink()
    resp = await client.post(f"/api/videos/{gone}/reprocess", headers=owner.headers)
    assert resp.status == 409
    assert "no longer stored" in (await check_openapi(openapi, resp))["detail"]

    member = await sign_up(client, "member")
    resp = await client.post("/api/admin/reprocess-failed", headers=member.headers)
    assert resp.status == 403
    resp = await client.post("/api/admin/reprocess-failed", headers=owner.headers)
    assert resp.status == 202
    assert await check_openapi(openapi, resp) == {"queued": 2, "skipped": 1}
    for video_id in [busy, *waiting]:
        body = await wait_for(client, owner, video_id, finished, timeout=120)
        assert body["status"] == "ready", body
    async with ClientSession() as http:
        audio = await video(client, owner, waiting[1])
        async with http.get(client.make_url(audio["streams"]["hls"])) as resp:
            assert resp.status == 200
    assert (await video(client, owner, gone))["status"] == "failed"


async def test_a_rebuild_stopped_by_a_restart_goes_on_and_switches(
    aiohttp_client: Any, tmp_path: Path, clip: Callable[[str], Path],
) -> None:
    data = tmp_path / "data"
    first = await aiohttp_client(create_app(pipeline_config(data)))
    owner = await sign_up(first, "owner")
    video_id = await submit(first, owner, clip("long_480p.mp4"))
    before = await wait_for(first, owner, video_id, finished, timeout=120)
    resp = await first.post(f"/api/videos/{video_id}/reprocess", headers=owner.headers)
    assert resp.status == 202
    await running_with_progress(first, owner, video_id)
    await first.close()  # the server stops; the job stays `running` for the next start

    client = await aiohttp_client(create_app(pipeline_config(data)))
    body = await video(client, owner, video_id)
    assert (body["status"], body["streams"], body["processing_again"]) == (
        "ready", before["streams"], True)
    body = await wait_for(client, owner, video_id, rebuilt, timeout=120)
    assert body["streams"]["hls"].endswith("?g=1")
    job = await job_row(client, video_id)
    assert (job["status"], job["attempts"], job["interruptions"]) == ("done", 1, 1)
    assert await decode_errors(str(client.make_url(body["streams"]["hls"]))) == ""
