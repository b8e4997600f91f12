"""The server process is killed (kill -9) mid-encode and started again on the same data
directory: the job is requeued as interrupted (no attempt used), goes on from the segments
already on disk, and a video that was playable stays playable throughout."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import m3u8
import pytest

from media.ladder import LadderSettings, choose_ladder, fixed_boundaries
from media.layout import segment_name
from media.pipeline import ProcessSettings, process
from media.probe import probe
from server import keys, storage
from server.workers.runner import INTERRUPTED
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
from tests.pipeline.test_interruptions import gone

SEGMENT = 2.0
FEW_POINTS = 5.0  # progress lost to a restart: at most one segment and the encoder's delay
# The crash loop: a 480p H.264 source whose top rung is copied (playable within seconds)
# and two rungs encoded at x264 veryfast, killed every few points of progress.
LOOP_CLIP = Clip(854, 480, seconds=90.0, gop=60,
                 options={"crf": "36", "preset": "superfast", "x264-params": "scenecut=0"})
LOOP_SETTINGS = ProcessSettings(ladder=LadderSettings(
    enabled=frozenset({480, 360, 240}), preset="veryfast", segment_target=SEGMENT))
KILLS = 8
STEP = 6.0  # points of progress between kills


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    config = pipeline_config(tmp_path / "data", port=free_port(), segment_seconds=SEGMENT)
    running = Server(config)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def loop_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("crash-loop") / "remux_480p_90s.mp4", LOOP_CLIP)


@dataclass
class Restart:
    before: float  # percent last saved before the server was killed
    after: float  # the restarted worker's first report
    startup: float  # seconds from the start of run.py to its first answer
    first_report: float  # seconds from the start of run.py to the worker's first report
    catch_up: float  # seconds from the start of run.py until progress was back at `before`
    whole: dict[str, float]  # by rung: seconds of video in whole segments at the kill
    redone: float  # seconds from the start of run.py until each rung's segment in flight
    # at the kill was whole again: the work the kill threw away, redone, plus the start


def whole_segments(server: Server, video_id: str, names: Sequence[str]) -> dict[str, int]:
    """Whole segments on disk by rung (a finished rung counts as having them all)."""
    layout = storage.video_layout(server.config, video_id)
    counts = {}
    for name in names:
        if layout.media_playlist(name).is_file():
            counts[name] = 1 << 30
        else:
            counts[name] = len(list(layout.rendition_partial(name).glob("seg_*.m4s")))
    return counts


async def kill_and_restart(server: Server, http: aiohttp.ClientSession, video_id: str,
                           headers: dict[str, str], video_key: int,
                           boundaries: Sequence[float], rungs: Sequence[str]) -> Restart:
    """kill -9 the server mid-encode, start it again, measure what the restart cost."""
    url = f"{server.url}/api/videos/{video_id}"
    job = job_of(server.config, video_key)
    assert job["status"] == "running" and job["worker_pid"], job
    worker = int(job["worker_pid"])
    server.kill()
    deadline = time.monotonic() + 3
    while not gone(worker):  # the worker notices its parent is gone and exits
        assert time.monotonic() < deadline, "the orphaned worker kept running"
        await asyncio.sleep(0.02)
    left = job_of(server.config, video_key)
    assert left["status"] == "running"  # as the kill left it, until the next start
    before = json.loads(left["progress"])["percent"]
    at_kill = whole_segments(server, video_id, rungs)
    began = time.monotonic()
    startup = await server.start(http)
    while True:  # the restarted worker's first progress report
        job = job_of(server.config, video_key)
        if job["worker_pid"] not in (None, worker) and job["progress"] != left["progress"]:
            break
        assert time.monotonic() - began < 30, job
        await asyncio.sleep(0.02)
    after = json.loads(job["progress"])["percent"]
    first_report = time.monotonic() - began
    catch_up = redone = 0.0
    while not (catch_up and redone):
        body = await poll(http, url, headers, lambda b: True, timeout=5)
        now = time.monotonic() - began
        if not catch_up and (percent(body) >= before or finished(body)):
            catch_up = now
        counts = whole_segments(server, video_id, rungs)
        in_flight = [n for n in rungs if at_kill[n] < len(boundaries)]
        if not redone and all(counts[n] > at_kill[n] for n in in_flight):
            redone = now
        assert now < 60, (body, counts, at_kill)
        await asyncio.sleep(0.02)
    whole = {n: boundaries[c] if c < len(boundaries) else float("inf")
             for n, c in at_kill.items()}
    return Restart(before, after, startup, first_report, catch_up, whole, redone)


async def check_ladder(server: Server, video_id: str, tmp: Path, boundaries: int) -> None:
    """Over HTTP: ffmpeg decodes every rung; every rendition has one segment per boundary,
    named in order; each segment goes on exactly where the previous one ended."""
    master = f"{server.url}/api/videos/{video_id}/hls/master.m3u8"
    assert await decode_errors(master) == ""
    tmp.mkdir(parents=True, exist_ok=True)
    ladder = await fetch_ladder(master, tmp)
    assert ladder
    for rendition in ladder:
        uris = [s.uri for s in rendition.playlist.segments]
        assert uris == [segment_name(i) for i in range(boundaries)], (rendition.name, uris)
        assert_continuous(rendition)
    hls = storage.video_layout(server.config, video_id).hls
    assert not [p for p in hls.rglob(".*")], "temporary files left behind"


async def test_job_goes_on_after_the_server_is_killed(
    server: Server, clip: Callable[[str], Path], tmp_path: Path
) -> None:
    config = server.config
    source = clip("long_480p.mp4")
    async with aiohttp.ClientSession() as http:
        await server.start(http)
        headers = await sign_in(http, server)
        video_id, video_key = await submit_to_data_dir(config, "owner", source)
        url = f"{server.url}/api/videos/{video_id}"
        await poll(http, url, headers, lambda b: percent(b) >= 40, timeout=60)
        boundaries = fixed_boundaries(40.0, SEGMENT)
        restart = await kill_and_restart(server, http, video_id, headers, video_key,
                                         boundaries, ["360p", "240p"])
        # Where it stood, within a segment's worth: it did not start over. (It may even be
        # ahead: progress is saved twice a second, the segments on disk are the truth.)
        assert restart.after >= restart.before - FEW_POINTS, restart
        body = await poll(http, url, headers, finished, timeout=120)
        assert body["status"] == "ready", body
        job = job_of(config, video_key)
        assert (job["status"], job["attempts"], job["interruptions"]) == ("done", 1, 1)
        assert job["last_error"] == INTERRUPTED
        await check_ladder(server, video_id, tmp_path, len(boundaries))
        assert storage.original_path(config, video_id).exists()


async def test_crash_loop_ends_ready_with_its_attempts_unused(
    server: Server, loop_clip: Path, tmp_path: Path
) -> None:
    """kill -9 again and again while the video is encoded: it stays playable (its copied
    top rung) through every restart, loses only a few points each time, ends `ready` with
    the same playlists an uninterrupted run makes, and has used one attempt."""
    config = server.config
    server.config = config = dataclasses.replace(config, ladder="480,360,240",
                                                 x264_preset="veryfast")
    restarts: list[Restart] = []
    async with aiohttp.ClientSession() as http:
        await server.start(http)
        headers = await sign_in(http, server)
        video_id, video_key = await submit_to_data_dir(config, "owner", loop_clip)
        url = f"{server.url}/api/videos/{video_id}"
        master = f"{url}/hls/master.m3u8"
        ladder = choose_ladder(probe(loop_clip), LOOP_SETTINGS.ladder)
        assert ladder.remux_top
        # Ready as soon as the copied 480p rung is done; then the two encoded rungs.
        body = await poll(http, url, headers, lambda b: b["status"] == "ready", timeout=60)
        assert percent(body) < 50, body
        started = time.monotonic()
        for _ in range(KILLS):
            floor = percent(body) + STEP
            body = await poll(http, url, headers,
                              lambda b, floor=floor: percent(b) >= floor or finished(b),
                              timeout=60)
            if finished(body):
                break
            restart = await kill_and_restart(server, http, video_id, headers, video_key,
                                             ladder.boundaries, ["360p", "240p"])
            restarts.append(restart)
            body = await poll(http, url, headers, lambda b: True, timeout=5)
            assert body["status"] == "ready", body  # never back to `uploaded`
            async with http.get(master) as resp:  # and its ladder so far is served
                assert resp.status == 200
                listed = m3u8.loads(await resp.text()).playlists
            assert {p.uri.split("/")[0] for p in listed} >= {"480p", "audio"}
        body = await poll(http, url, headers, finished, timeout=180)
        elapsed = time.monotonic() - started
        assert body["status"] == "ready", body
        assert len(restarts) >= 5, restarts
        job = job_of(config, video_key)
        assert (job["status"], job["attempts"], job["interruptions"]) == (
            "done", 1, len(restarts))
        for restart in restarts:
            assert restart.after >= restart.before - FEW_POINTS, restarts
        duration = LOOP_CLIP.seconds
        await check_ladder(server, video_id, tmp_path / "ladder", len(ladder.boundaries))
    report(restarts, duration, elapsed)
    # The same playlists as a run that was never interrupted.
    reference = tmp_path / "reference"
    result = await asyncio.to_thread(process, loop_clip, reference, LOOP_SETTINGS)
    hls = storage.video_layout(config, video_id).hls
    for info in result.renditions:
        name = f"{info.name}/index.m3u8"
        assert (hls / name).read_text() == (reference / "hls" / name).read_text(), name


def report(restarts: list[Restart], duration: float, elapsed: float) -> None:
    """The crash loop's figures, printed for the record (pytest -s shows them)."""
    lines = [f"crash loop: {len(restarts)} kill -9s of a {duration:.0f} s video's encoding;"
             f" ready {elapsed:.1f} s after the first kill"]
    for i, r in enumerate(restarts, 1):
        whole = ", ".join(f"{n} {t:.0f} s" for n, t in r.whole.items() if t != float("inf"))
        lines.append(
            f"  restart {i}: killed at {r.before:.1f}% (whole segments: {whole}); the"
            f" restarted worker's first report {r.after:.1f}%; server answering after"
            f" {r.startup:.2f} s, worker reporting after {r.first_report:.2f} s, back at"
            f" {r.before:.1f}% after {r.catch_up:.2f} s; the segments in flight at the kill"
            f" whole again after {r.redone:.2f} s")
    print("\n".join(lines))


async def test_clean_shutdown_ends_workers_and_the_next_start_resumes(
    aiohttp_client: Any, tmp_path: Path, clip: Callable[[str], Path]
) -> None:
    """The app's cleanup (SIGTERM in run.py) ends the worker; the job stays `running` and the
    next start requeues it. Progress reaches the bus as `video.progress` events."""
    from server.app import create_app
    from tests.helpers import sign_up
    from tests.pipeline.conftest import finished as done
    from tests.pipeline.conftest import job_row, submit, wait_for
    from tests.pipeline.test_interruptions import running_with_progress

    config = pipeline_config(tmp_path / "data")
    first = await aiohttp_client(create_app(config))
    owner = await sign_up(first, "owner")
    video_id = await submit(first, owner, clip("long_480p.mp4"))
    progress = first.app[keys.BUS].subscribe([f"video:{video_id}"])
    job = await running_with_progress(first, owner, video_id)
    event = await asyncio.wait_for(progress.get(), 5)
    while event is not None and event["type"] != "video.progress":
        event = await asyncio.wait_for(progress.get(), 5)
    assert event is not None
    assert set(event) >= {"percent", "renditions", "eta_seconds"}
    assert 0 < event["percent"] < 100
    await first.close()
    assert gone(job["worker_pid"])
    assert job_of(config, job["video_id"])["status"] == "running"

    second = await aiohttp_client(create_app(config))
    body = await wait_for(second, owner, video_id, done, timeout=120)
    assert body["status"] == "ready", body
    job = await job_row(second, video_id)
    assert (job["status"], job["attempts"], job["interruptions"]) == ("done", 1, 1)
