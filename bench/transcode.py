"""Transcoding benchmark: Reelhouse's pipeline against ffmpeg, in one run, on the same sources.

    .venv/bin/python bench/transcode.py            # about 5 minutes on 2 cores
    .venv/bin/python bench/transcode.py --seconds 30 --ladder 1080,720,480,360
    .venv/bin/python bench/transcode.py --latency-only   # part two alone

Two 1080p30 H.264/AAC sources of --seconds (at least 30) are made with the ffmpeg CLI
(testsrc2 + sine): "remuxable" (4.5 Mbit/s, a keyframe every 2 s: its 1080p rung is a
stream copy) and "encoded" (10 Mbit/s, over the 1080p cap of 6 Mbit/s: every rung is
encoded). For each source:

  (a) Reelhouse: run.py as a process, the file uploaded with POST /api/videos/upload;
      times from the upload's response to the first playable rendition (status `ready`),
      to every rendition done, and to the whole job (poster and storyboard included).
  (b) one ffmpeg process making the same ladder: one decode, `split`, the same libx264
      preset, CRF, VBV caps and forced IDR instants, HLS fMP4, every rung encoded (the
      ladder a plain transcoder makes; the issue's a/b <= 0.6 for remuxable sources is
      against it). For a remuxable source (b') also runs with the top rung copied, as
      the pipeline does, and a/b' is printed beside a/b: the same work on both sides.
  (c) PeerTube's way: one ffmpeg process per rung, one after the other.

It prints a/b and a/c (a = every rendition done) of wall time, and of CPU time (user +
system: the worker's own, recorded in jobs.cpu_seconds, and ffmpeg's), which holds still
when other work shares the machine, and the first playable rendition's delay as a
fraction of the source's duration. Part two measures the p99 latency of
GET /api/videos/{id} with --clients concurrent clients on the idle server, then while a
transcode runs, and prints the ratio. Every step has a time limit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from media.ladder import Ladder, LadderSettings, choose_ladder  # noqa: E402
from media.probe import probe  # noqa: E402

STEP_TIMEOUT = 600.0
SEGMENT = 6.0
PASSWORD = "bench password 1"


# -- sources -------------------------------------------------------------------------------
def make_source(path: Path, seconds: int, kbps: int) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-y",
         "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate=30:duration={seconds}",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-profile:v", "high", "-pix_fmt", "yuv420p",
         "-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k",
         "-g", "60", "-keyint_min", "60", "-sc_threshold", "0",
         "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", str(path)],
        check=True, timeout=STEP_TIMEOUT)


def ladder_of(path: Path, rungs: frozenset[int]) -> Ladder:
    return choose_ladder(probe(path), LadderSettings(enabled=rungs))


# -- (b) and (c): the ffmpeg CLI -----------------------------------------------------------
def x264_args(index: str, r: Any, preset: str) -> list[str]:
    """The same encoder settings as media.transcode: CRF under a VBV cap, IDR only at the
    segment boundaries (every SEGMENT seconds)."""
    return [f"-c:v{index}", "libx264", f"-preset{index}", preset, f"-profile:v{index}", "high",
            f"-level:v{index}", r.level, f"-crf{index}", "23",
            f"-maxrate{index}", f"{r.max_kbps}k", f"-bufsize{index}", f"{2 * r.max_kbps}k",
            f"-x264-params{index}", "keyint=infinite:scenecut=0:open-gop=0",
            f"-force_key_frames{index}", f"expr:gte(t,n_forced*{SEGMENT})",
            f"-forced-idr{index}", "1", f"-r{index}", str(r.fps)]


def hls_args(out: Path, var_map: str | None) -> list[str]:
    args = ["-f", "hls", "-hls_time", str(SEGMENT), "-hls_playlist_type", "vod",
            "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments"]
    if var_map:
        args += ["-var_stream_map", var_map, "-master_pl_name", "master.m3u8",
                 "-hls_segment_filename", str(out / "v%v" / "seg_%05d.m4s"),
                 str(out / "v%v" / "index.m3u8")]
    else:
        args += ["-hls_segment_filename", str(out / "seg_%05d.m4s"), str(out / "index.m3u8")]
    return args


def one_process(source: Path, ladder: Ladder, out: Path, preset: str,
                copy_top: bool) -> list[str]:
    copy_top = copy_top and ladder.remux_top
    encoded = [r for r in ladder.video if not (r.copy and copy_top)]
    chains = [f"[v{i}]scale={r.width}:{r.height}:flags=area[o{i}]" for i, r in enumerate(encoded)]
    graph = f"[0:v]split={len(encoded)}" + "".join(f"[v{i}]" for i in range(len(encoded)))
    args = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source),
            "-filter_complex", ";".join([graph, *chains])]
    index = 0
    if copy_top:
        args += ["-map", "0:v", "-c:v:0", "copy"]
        index = 1
    for i, r in enumerate(encoded):
        args += ["-map", f"[o{i}]", *x264_args(f":v:{index + i}", r, preset)]
    args += ["-map", "0:a", "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
    streams = " ".join(f"v:{i},agroup:aud" for i in range(len(ladder.video)))
    return args + hls_args(out, f"{streams} a:0,agroup:aud")


def per_rung(source: Path, ladder: Ladder, out: Path, preset: str) -> list[list[str]]:
    commands = []
    for r in ladder.video:
        rung_out = out / r.name  # made by run_timed
        video = ["-c:v", "copy"] if r.copy else [
            "-vf", f"scale={r.width}:{r.height}:flags=area", *x264_args("", r, preset)]
        commands.append(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(source),
                         "-map", "0:v", *video, "-map", "0:a", "-c:a", "aac", "-b:a", "128k",
                         "-ac", "2", *hls_args(rung_out, None)])
    return commands


def cpu_of_children() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _lower_priority(nice: int) -> None:
    """The server's workers' priority (niceness and SCHED_IDLE), for a fair comparison."""
    os.nice(nice)
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def run_timed(commands: list[list[str]], out: Path, nice: int) -> tuple[float, float]:
    """Wall time and CPU time (user + system) of the commands, run one after the other."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    started, cpu = time.monotonic(), cpu_of_children()
    for command in commands:
        for directory in {Path(a).parent for a in command if a.startswith(str(out))}:
            directory.mkdir(parents=True, exist_ok=True)
        # At the workers' priority, so that (a), (b) and (c) compete alike with anything else.
        subprocess.run(command, check=True, timeout=STEP_TIMEOUT,
                       preexec_fn=lambda: _lower_priority(nice))
    return time.monotonic() - started, cpu_of_children() - cpu


# -- (a): the server -------------------------------------------------------------------------
@dataclass
class Timing:
    first_playable: float
    renditions_done: float
    job_done: float
    cpu: float  # the worker's user + system time (jobs.cpu_seconds)


class Server:
    def __init__(self, data_dir: Path, ladder: str, preset: str, nice: int) -> None:
        self.db_path = data_dir / "reelhouse.sqlite3"
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "run.py", "--data-dir", str(data_dir), "--port", str(self.port),
             "--ladder", ladder, "--x264-preset", preset, "--worker-nice", str(nice),
             "--access-log", "false",
             "--log-level", "WARNING", "--min-free-disk-bytes", "0",
             "--rate-limit-per-minute", "10000000", "--rate-limit-user-per-minute", "10000000",
             "--upload-rate-limit-per-minute", "100000"],
            cwd=REPO)
        self.headers: dict[str, str] = {}

    async def ready(self, http: aiohttp.ClientSession) -> None:
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(aiohttp.ClientConnectionError):
                async with http.get(f"{self.url}/healthz") as resp:
                    if resp.status == 200:
                        break
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError("the server did not start")
            await asyncio.sleep(0.1)
        account = {"username": "bench", "password": PASSWORD}
        async with http.post(f"{self.url}/api/users", json=account) as resp:
            assert resp.status == 201, await resp.text()
        async with http.post(f"{self.url}/api/auth/login", json=account) as resp:
            token = (await resp.json())["access_token"]
        http.cookie_jar.clear()
        self.headers = {"Authorization": f"Bearer {token}"}

    async def upload(self, http: aiohttp.ClientSession, source: Path) -> str:
        form = aiohttp.FormData()
        form.add_field("title", source.stem)
        with source.open("rb") as fh:
            form.add_field("file", fh, filename=source.name, content_type="video/mp4")
            async with http.post(f"{self.url}/api/videos/upload", data=form,
                                 headers=self.headers) as resp:
                assert resp.status == 201, await resp.text()
                return str((await resp.json())["id"])

    async def video(self, http: aiohttp.ClientSession, video_id: str) -> dict[str, Any]:
        async with http.get(f"{self.url}/api/videos/{video_id}", headers=self.headers) as resp:
            assert resp.status == 200
            body: dict[str, Any] = await resp.json()
            return body

    async def transcode(self, http: aiohttp.ClientSession, source: Path) -> Timing:
        video_id = await self.upload(http, source)
        started = time.monotonic()  # the upload is complete: the server has answered
        first = renditions = None
        deadline = started + STEP_TIMEOUT
        while time.monotonic() < deadline:
            body = await self.video(http, video_id)
            now = time.monotonic() - started
            if body["status"] == "failed":
                raise RuntimeError(f"transcode failed: {body['error']}")
            progress = body["progress"] or {}
            done = progress.get("renditions") or {}
            if body["status"] == "ready" and first is None:
                first = now
            if done and all(v == 100 for v in done.values()) and renditions is None:
                renditions = now
            if progress.get("percent") == 100 and first is not None:
                return Timing(first, renditions or now, now, self.job_cpu(video_id))
            await asyncio.sleep(0.05)
        raise RuntimeError("the transcode timed out")

    def job_cpu(self, video_id: str) -> float:
        with contextlib.closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT cpu_seconds FROM jobs JOIN videos ON videos.id = video_id"
                             " WHERE videos.public_id = ?", (video_id,)).fetchone()
        return float(row[0])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()


# -- part two: API latency under load -------------------------------------------------------
async def latencies(server: Server, video_id: str, clients: int, seconds: float,
                    until: asyncio.Future[Any] | None = None) -> list[float]:
    samples: list[float] = []
    stop_at = time.monotonic() + seconds
    url = f"{server.url}/api/videos/{video_id}"

    async def client() -> None:
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < stop_at and not (until and until.done()):
                t = time.perf_counter()
                async with http.get(url, headers=server.headers) as resp:
                    await resp.read()
                    assert resp.status == 200
                samples.append(time.perf_counter() - t)

    await asyncio.gather(*(client() for _ in range(clients)))
    return samples


def p99(samples: list[float]) -> float:
    return statistics.quantiles(samples, n=100)[98] if len(samples) > 100 else max(samples)


# -- the run ---------------------------------------------------------------------------------
@contextlib.contextmanager
def server_in(directory: Path, ladder: str, preset: str, nice: int) -> Iterator[Server]:
    server = Server(directory, ladder, preset, nice)
    try:
        yield server
    finally:
        server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=30)
    parser.add_argument("--ladder", default="1080,720,480,360")
    parser.add_argument("--preset", default="veryfast")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--latency-only", action="store_true", help="only part two")
    parser.add_argument("--nice", type=int, default=19,
                        help="worker niceness (the server's default), also used for ffmpeg")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    args = parser.parse_args()
    rungs = frozenset(int(r) for r in args.ladder.split(","))
    print(f"load average {os.getloadavg()[0]:.1f}, cores {os.cpu_count()}, ladder "
          f"{args.ladder} + audio, preset {args.preset}, source {args.seconds} s 1080p30",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="rh-bench-") as tmp_name:
        tmp = Path(tmp_name)
        sources = {"encoded": (tmp / "encoded.mp4", 10000), "remuxable": (tmp / "remux.mp4", 4500)}
        for path, kbps in sources.values():
            make_source(path, args.seconds, kbps)
        results: dict[str, dict[str, float]] = {}
        async with aiohttp.ClientSession() as http:
            with server_in(tmp / "data", args.ladder, args.preset, args.nice) as server:
                await server.ready(http)
                for kind, (path, _) in sources.items():
                    if args.latency_only:
                        break
                    ladder = ladder_of(path, rungs)
                    assert ladder.remux_top == (kind == "remuxable"), kind
                    duration = ladder.duration
                    a = await server.transcode(http, path)
                    b_run = run_timed([one_process(path, ladder, tmp / "b", args.preset, False)],
                                      tmp / "b", args.nice)
                    b_copy, b_copy_cpu = b_run
                    if ladder.remux_top:
                        b_copy, b_copy_cpu = run_timed(
                            [one_process(path, ladder, tmp / "b", args.preset, True)],
                            tmp / "b", args.nice)
                    c_run = run_timed(per_rung(path, ladder, tmp / "c", args.preset), tmp / "c",
                                      args.nice)
                    (b, b_cpu), (c, c_cpu) = b_run, c_run
                    results[kind] = {"a": a.renditions_done, "b": b, "c": c, "a_cpu": a.cpu,
                                     "b_cpu": b_cpu, "c_cpu": c_cpu, "b_copy": b_copy,
                                     "b_copy_cpu": b_copy_cpu,
                                     "first": a.first_playable, "duration": duration}
                    print(f"{kind:>9}: wall a {a.renditions_done:6.2f} s (whole job with poster "
                          f"and storyboard {a.job_done:.2f} s), b {b:6.2f} s, c {c:6.2f} s; "
                          f"CPU a {a.cpu:6.1f} s, b {b_cpu:6.1f} s, c {c_cpu:6.1f} s; "
                          + (f"b' (top rung copied) {b_copy:.2f} s, CPU {b_copy_cpu:.1f} s; "
                             if ladder.remux_top else "") +
                          f"first playable after {a.first_playable:.2f} s = "
                          f"{a.first_playable / duration:.3f} of the duration", flush=True)

                # Part two: the same server, idle and then while the encoded source runs.
                probe_id = await server.upload(http, sources["remuxable"][0])
                while (await server.video(http, probe_id))["progress"] is None or \
                        (await server.video(http, probe_id))["progress"]["percent"] < 100:
                    await asyncio.sleep(0.2)
                idle = await latencies(server, probe_id, args.clients, args.latency_seconds)
                busy_id = await server.upload(http, sources["encoded"][0])
                while (await server.video(http, busy_id))["status"] != "processing":
                    await asyncio.sleep(0.05)
                busy = await latencies(server, probe_id, args.clients, args.latency_seconds)
                status = (await server.video(http, busy_id))["status"]
                progress = (await server.video(http, busy_id))["progress"] or {}
        print(f"GET /api/videos/{{id}}, {args.clients} clients, {args.latency_seconds:.0f} s each: "
              f"idle p99 {1000 * p99(idle):.2f} ms ({len(idle)} requests), "
              f"during a transcode p99 {1000 * p99(busy):.2f} ms ({len(busy)} requests; the job "
              f"was {status}, {progress.get('percent')}%); ratio {p99(busy) / p99(idle):.2f}")
        for kind, r in results.items():
            same = (f"  (a/b' {r['a'] / r['b_copy']:.2f}, CPU {r['a_cpu'] / r['b_copy_cpu']:.2f})"
                    if kind == "remuxable" else "")
            print(f"summary {kind}: wall a/b {r['a'] / r['b']:.2f}  a/c {r['a'] / r['c']:.2f};  "
                  f"CPU a/b {r['a_cpu'] / r['b_cpu']:.2f}  a/c {r['a_cpu'] / r['c_cpu']:.2f};"
                  f"{same}  "
                  f"first playable {r['first'] / r['duration']:.3f} of the duration")


if __name__ == "__main__":
    asyncio.run(main())
