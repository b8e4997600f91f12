"""Media serving, Reelhouse against nginx, on the same files, in one run.

    make bench-serve                                 (about 5 minutes; wrk, nginx)
    .venv/bin/python bench/serve.py --quick          (about 2 minutes)
    .venv/bin/python bench/serve.py --help           (the knobs: rounds, viewers, budget)

The data is what the app makes of a real upload: a 36 s 720p30 H.264/AAC clip (2.8 Mbit/s,
a keyframe every 2 s, made with PyAV) is sent by a signed-up user to `POST
/api/videos/upload` on `run.py` (rate limits and access log off, one transcoding worker),
and the bench waits until the video is ready and its job done. The pipeline has then
written the ladder (720p a remux of the clip, so its 6 s segments are about 2 MB; 480p,
360p and 240p encoded), the thumbnails, and the original. nginx serves that media folder
at the same paths (`location /api/videos/ { alias <data>/media/; }`, which ignores query
strings). Both listen on 127.0.0.1; one server process, nginx with one worker unless
--nginx-workers says otherwise.

Every measured URL is one `GET /api/videos/{id}` hands out, used as-is: `streams.hls`, the
media playlist of its top variant, that playlist's segment URIs (resolved against the
playlist's URL, query string kept), and `streams.original`. The public video's URLs are
those an anonymous viewer gets; then the owner makes the video private (`PATCH`) and the
URLs are those the API hands the owner (`Authorization: Bearer`), signed with `?sig=`.
nginx is asked for the same path and query.

Cases, with wrk (1 thread, 64 connections; rounds alternate which server goes first, and
each side's best round counts), for the public and then the private video:

    segments  GET of the 720p segment nearest 2 MB      target >= 0.8 of nginx (bytes/s)
    ranges    GET of random 1 MB ranges of the original  target >= 0.7

A viewer simulation on the public video, against each server in turn: N HLS players
(bench/viewers.py, asyncio + aiohttp, in --procs processes apart from the servers; its
docstring has the pacing, the stall rule and the rung choice) join over --ramp seconds
and each fetches --watch seconds of video at real-time pace. N doubles from --start until
a player stalls, then is bisected until the step is within 1/8; trials alternate between
the servers, and no trial starts after --budget seconds. Printed per trial and at the end:
the largest N without a stall for each side, the ratio (target >= 0.8), the server's peak
RSS during that trial, and the CPU the server and the players used. On a 2-core machine
the players need most of the CPU at these byte rates, so the figure is what the machine
sustains, client included; the server's own CPU use is what differs between the sides.

Last, 500 slow readers hold the original open at once (4 KB every half second) and the
server's RSS is reported (target < 200 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import av
import av.error
import av.filter
from av.video.frame import PictureType, VideoFrame
from urllib3 import encode_multipart_formdata

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.viewers import parse_master, parse_media
from tests.uploads.serverproc import ServerProcess

ROOT = Path(__file__).resolve().parents[1]
CLIP_SECONDS, CLIP_FPS, CLIP_KBPS = 36, 30, 2800
CONNECTIONS = 64
SEGMENT_BYTES = 2_000_000
SLOW_READERS = 500
MAX_PLAYERS = 18_000  # the client and the server each hold one descriptor per player

# Settings of a full run, and those --quick changes.
FULL: dict[str, tuple[float, str]] = {
    "rounds": (3, "wrk rounds per case, alternating"),
    "seconds": (2.0, "seconds per wrk run"),
    "start": (500, "first number of viewers"),
    "watch": (24.0, "seconds of video each viewer fetches"),
    "ramp": (6.0, "seconds over which the viewers join"),
    "budget": (210.0, "seconds for the viewer search, both sides together"),
    "procs": (2, "processes the viewers are spread over"),
}
QUICK: dict[str, float] = {"rounds": 1, "start": 250, "watch": 18.0, "ramp": 3.0,
                           "budget": 45.0}

RANGE_SCRIPT = """
math.randomseed(42)
request = function()
  local mb = math.random(0, %d)
  local first = mb * 1048576
  return wrk.format("GET", "%s", {Range = "bytes=" .. first .. "-" .. (first + 1048575)})
end
"""

NGINX_CONF = """
user root;
worker_processes {workers};
worker_rlimit_nofile 20000;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 19500; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp4 m4s mp4; image/jpeg jpg; }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        location /api/videos/ {{ alias {media}/; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pull(sink: av.filter.context.FilterContext) -> Iterator[av.frame.Frame]:
    while True:
        try:
            yield sink.pull()
        except (av.error.EOFError, av.error.BlockingIOError):
            return


def _source(name: str, args: str, *filters: tuple[str, str]) -> Iterator[av.frame.Frame]:
    """The frames of one FFmpeg source filter (and the filters after it)."""
    graph = av.filter.Graph()
    last = graph.add(name, args)
    for step in filters:
        node = graph.add(*step)
        last.link_to(node)
        last = node
    sink = graph.add("abuffersink" if name == "sine" else "buffersink")
    last.link_to(sink)
    graph.configure()
    yield from _pull(sink)  # the generator holds the graph alive while it is read


def make_clip(path: Path, seconds: int) -> Path:
    """720p30 H.264 (a keyframe every 2 s; noise, so that the bitrate holds) and AAC."""
    out = av.open(str(path), "w", options={"movflags": "+faststart"})
    gop = str(CLIP_FPS * 2)
    video = out.add_stream("libx264", rate=CLIP_FPS, options={
        "preset": "ultrafast", "b": f"{CLIP_KBPS}k", "maxrate": f"{CLIP_KBPS + 200}k",
        "bufsize": f"{CLIP_KBPS + 200}k", "g": gop, "keyint_min": gop, "sc_threshold": "0"})
    video.width, video.height, video.pix_fmt = 1280, 720, "yuv420p"
    audio = out.add_stream("aac", rate=48000)
    audio.layout = "stereo"
    frames = _source("testsrc2", f"size=1280x720:rate={CLIP_FPS}:duration={seconds}",
                     ("noise", "alls=12:allf=t"))
    for frame in frames:
        assert isinstance(frame, VideoFrame)
        frame.pict_type = PictureType.NONE  # testsrc2 marks every frame I; let x264 choose
        out.mux(video.encode(frame))
    out.mux(video.encode(None))
    for sample in _source("sine", f"frequency=440:sample_rate=48000:duration={seconds}"):
        out.mux(audio.encode(sample))
    out.mux(audio.encode(None))
    out.close()
    return path


def api_json(server: ServerProcess, method: str, path: str, token: str | None = None,
             body: object = None) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, _, text = server.request(method, path, body, headers)
    if status >= 300:
        raise SystemExit(f"{method} {path}: {status} {text[:300]!r}")
    return dict(json.loads(text))


def upload(server: ServerProcess, token: str, clip: Path) -> str:
    """The simple upload a browser form makes; returns the video's id once it is ready
    and its processing is done (every rung in the master playlist)."""
    body, content_type = encode_multipart_formdata({
        "title": "bench clip", "privacy": "public",
        "file": ("bench.mp4", clip.read_bytes(), "video/mp4")})
    status, _, text = server.request("POST", "/api/videos/upload", body, {
        "Authorization": f"Bearer {token}", "Content-Type": content_type})
    if status != 201:
        raise SystemExit(f"upload: {status} {text[:300]!r}")
    video_id = str(json.loads(text)["id"])
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        video = api_json(server, "GET", f"/api/videos/{video_id}", token)
        progress = video.get("progress") or {}
        assert isinstance(progress, dict)
        # Ready comes with the first rendition; the job is done once every rung is in.
        if video["status"] == "ready" and progress.get("percent") == 100:
            return video_id
        if video["status"] in ("failed", "rejected", "cancelled"):
            raise SystemExit(f"processing ended as {video['status']}: {video.get('error')}")
        time.sleep(0.5)
    raise SystemExit("the video was not ready within 10 minutes")


def fetch(url: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
    with urllib.request.urlopen(urllib.request.Request(url, method=method)) as resp:
        return resp.status, resp.read(), dict(resp.headers)


@dataclass(frozen=True)
class Media:
    master: str  # absolute URLs on the Reelhouse server
    segment: str
    segment_size: int
    original: str
    original_size: int


def handed_out(server: ServerProcess, video_id: str, token: str | None) -> Media:
    """The URLs a viewer (anonymous, or the owner with `token`) is handed, followed."""
    api_url = f"{server.base}/api/videos/{video_id}"
    video = api_json(server, "GET", f"/api/videos/{video_id}", token)
    streams = video["streams"]
    assert isinstance(streams, dict)
    master = urljoin(api_url, streams["hls"])
    top = parse_master(fetch(master)[1].decode(), master)[-1]
    media = parse_media(fetch(top.url)[1].decode(), top.url)
    sizes = {url: len(fetch(url)[1]) for _duration, url in media.segments}
    segment = min(sizes, key=lambda url: abs(sizes[url] - SEGMENT_BYTES))
    original = urljoin(api_url, streams["original"])
    _, _, headers = fetch(original, "HEAD")
    return Media(master, segment, sizes[segment], original, int(headers["Content-Length"]))


def on(port: int, url: str) -> str:
    """The same path and query on another server."""
    parts = urlsplit(url)
    return f"http://127.0.0.1:{port}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def wrk(url: str, seconds: float, script: Path | None = None) -> float:
    """Bytes/s from wrk; any non-2xx answer ends the bench."""
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    if re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"errors from {url}:\n{out}")
    rate = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    assert rate is not None, out
    scale = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[rate.group(2)]
    return float(rate.group(1)) * scale


def compare(name: str, ours: str, peer: str, target: float, rounds: int, seconds: float,
            script: Path | None = None) -> None:
    wrk(ours, 1, script)  # warm-up and sanity
    runs = []
    for i in range(rounds):  # alternate who goes first
        pair = [(0, ours), (1, peer)] if i % 2 == 0 else [(1, peer), (0, ours)]
        got = {side: wrk(url, seconds, script) for side, url in pair}
        runs.append((got[0], got[1]))
    a, b = max(r[0] for r in runs) / 2**20, max(r[1] for r in runs) / 2**20
    verdict = "ok" if a / b >= target else "BELOW"
    print(f"{name:34} {a:8.0f} MB/s {b:8.0f} MB/s {a / b:6.2f}  >={target} {verdict}",
          flush=True)


def range_script(base: Path, media: Media, tag: str) -> Path:
    path = urlsplit(media.original)
    target = path.path + (f"?{path.query}" if path.query else "")
    assert '"' not in target and "\\" not in target
    script = base / f"ranges-{tag}.lua"
    script.write_text(RANGE_SCRIPT % (media.original_size // (1 << 20) - 1, target))
    return script


def serving_cases(base: Path, label: str, media: Media, nginx_port: int,
                  rounds: int, seconds: float) -> None:
    size = media.segment_size / 1e6
    compare(f"segments {label} ({size:.1f} MB)", media.segment, on(nginx_port, media.segment),
            0.8, rounds, seconds)
    mib = media.original_size / 2**20
    compare(f"ranges {label} (1 MB of {mib:.0f} MB)", media.original,
            on(nginx_port, media.original), 0.7, rounds, seconds,
            range_script(base, media, label))


# --- viewer simulation -------------------------------------------------------------------

def proc_pids(pid: int) -> list[int]:
    """The process and its children (nginx: master and workers)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return [pid, *map(int, children)]


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        total += int(match.group(1)) if match else 0
    return total / 1024


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / os.sysconf("SC_CLK_TCK")


@dataclass
class Side:
    name: str
    master: str
    pids: list[int]  # whose RSS and CPU are the server's
    lo: int = 0  # largest N without a stall so far
    hi: int | None = None  # smallest N with one
    best: dict[str, Any] | None = None  # the trial at `lo`

    def next_n(self, start: int) -> int | None:
        if self.hi is None:
            n = self.lo * 2 if self.lo else start
            return n if n <= MAX_PLAYERS else None
        if self.hi - self.lo <= max(1, self.lo // 8):
            return None
        return (self.lo + self.hi) // 2


def trial(side: Side, n: int, watch: float, ramp: float, procs: int) -> dict[str, Any]:
    """N players in `procs` processes (each joining over the whole ramp), merged."""
    counts = [n // procs + (i < n % procs) for i in range(procs)]
    cpu0, peak = cpu_seconds(side.pids), 0.0
    started = time.monotonic()
    players = [subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "viewers.py"), "--master", side.master,
         "--players", str(count), "--watch", str(watch), "--ramp", str(ramp)],
        stdout=subprocess.PIPE, text=True) for count in counts if count]
    limit = started + ramp + watch + 60
    while any(p.poll() is None for p in players) and time.monotonic() < limit:
        peak = max(peak, rss_mb(side.pids))
        time.sleep(0.25)
    wall = time.monotonic() - started
    server_cpu = (cpu_seconds(side.pids) - cpu0) / wall
    results = []
    for proc in players:
        if proc.poll() is None:
            proc.kill()
        out, _ = proc.communicate()
        results.append(json.loads(out) if proc.returncode == 0 else None)
    if any(r is None for r in results):
        return {"stalls": -1, "first_stall": "players timed out or failed", "wall": wall}
    per_rung: dict[str, int] = {}
    for r in results:
        for rung, count in r["per_rung"].items():
            per_rung[rung] = per_rung.get(rung, 0) + count
    return {
        "stalls": sum(r["stalls"] for r in results),
        "first_stall": next((r["first_stall"] for r in results if r["first_stall"]), ""),
        "per_rung": dict(sorted(per_rung.items(), key=lambda kv: int(kv[0]))),
        "fetch_p99": max(r["fetch_p99"] for r in results),
        "wall": wall, "rss": peak, "server_cpu": server_cpu,
        "client_cpu": sum(r["cpu"] for r in results) / wall,
    }


def viewer_search(sides: list[Side], start: int, watch: float, ramp: float,
                  budget: float, procs: int) -> None:
    ends = time.monotonic() + budget
    step = 0
    while time.monotonic() < ends:
        todo = [(s, n) for s in sides if (n := s.next_n(start)) is not None]
        if not todo:
            break
        for side, n in todo if step % 2 == 0 else reversed(todo):
            result = trial(side, n, watch, ramp, procs)
            ok = result["stalls"] == 0
            if ok:
                side.lo, side.best = n, result
            else:
                side.hi = n
            why = "" if ok else f" ({result.get('first_stall') or 'timed out'})"
            print(f"  {side.name:9} N={n:5} {'ok   ' if ok else 'STALL'} "
                  f"server {result.get('server_cpu', 0):.2f} cores, players "
                  f"{result.get('client_cpu', 0):.2f} cores, segment p99 "
                  f"{result.get('fetch_p99', float('nan')) * 1000:.0f} ms{why}", flush=True)
        step += 1


def report_viewers(sides: list[Side], budget_hit: bool) -> None:
    ours, peer = sides
    for side in sides:
        best = side.best or {}
        bound = f", stalls at {side.hi}" if side.hi else ", no stall found"
        rungs = best.get("per_rung", {})
        print(f"viewers {side.name:9} largest N without a stall: {side.lo:5}{bound}; "
              f"RSS {best.get('rss', float('nan')):.0f} MB, server "
              f"{best.get('server_cpu', float('nan')):.2f} cores, players "
              f"{best.get('client_cpu', float('nan')):.2f} cores; segments per rung "
              f"(bit/s: count) {rungs}")
    ratio = ours.lo / peer.lo if peer.lo else float("nan")
    verdict = "ok" if ratio >= 0.8 else "BELOW"
    print(f"viewers ratio reelhouse/nginx: {ratio:.2f}  >=0.8 {verdict}"
          + ("  (search cut short by --budget)" if budget_hit else ""), flush=True)


# --- slow readers ------------------------------------------------------------------------

async def slow_readers(port: int, pid: int, original: str,
                       master: str) -> tuple[int, float, float]:
    """SLOW_READERS connections reading the original slowly: how many got a 200, the
    server's RSS while all were open, and a master playlist's latency then."""
    def target(url: str) -> str:
        parts = urlsplit(url)
        return parts.path + (f"?{parts.query}" if parts.query else "")

    async def reader(stop: asyncio.Event, ok: list[int]) -> None:
        reader_, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(f"GET {target(original)} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        status = await reader_.readline()
        if b" 200 " in status:
            ok.append(1)
        while not stop.is_set():
            await reader_.read(4096)
            await asyncio.sleep(0.5)
        writer.close()

    stop, ok = asyncio.Event(), []  # type: asyncio.Event, list[int]
    tasks = [asyncio.create_task(reader(stop, ok)) for _ in range(SLOW_READERS)]
    await asyncio.sleep(5)
    rss = rss_mb([pid])
    started = time.perf_counter()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {target(master)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await r.read()
    latency = time.perf_counter() - started
    w.close()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(ok), rss, latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nginx-workers", default="1", help="worker_processes (or auto)")
    parser.add_argument("--event-loop", default="asyncio", choices=["asyncio", "uvloop"],
                        help="the server's event loop setting (asyncio, the default)")
    parser.add_argument("--quick", action="store_true", help="a short run: " + ", ".join(
        f"--{k} {v:g}" for k, v in QUICK.items()))
    for name, (value, help_text) in FULL.items():
        parser.add_argument(f"--{name}", type=type(value), help=f"{help_text} ({value:g})")
    args = parser.parse_args()
    chosen = {name: getattr(args, name) for name in FULL}
    for name, (value, _help) in FULL.items():
        if chosen[name] is None:
            chosen[name] = QUICK.get(name, value) if args.quick else value
    rounds, seconds = int(chosen["rounds"]), float(chosen["seconds"])
    start, watch, ramp, budget = (int(chosen["start"]), float(chosen["watch"]),
                                  float(chosen["ramp"]), float(chosen["budget"]))
    with tempfile.TemporaryDirectory(prefix="reelhouse-bench-") as tmp:
        base = Path(tmp)
        data = base / "data"
        clip = make_clip(base / "clip.mp4", CLIP_SECONDS)
        nginx_port = free_port()
        (base / "nginx.conf").write_text(NGINX_CONF.format(
            dir=base, port=nginx_port, media=data / "media", workers=args.nginx_workers))
        server = ServerProcess(data, workers=1, event_loop=args.event_loop).start()
        nginx = subprocess.Popen(["nginx", "-c", str(base / "nginx.conf"), "-p", str(base)])
        try:
            token = server.sign_up("bench")
            started = time.monotonic()
            video_id = upload(server, token, clip)
            print(f"uploaded {clip.stat().st_size / 1e6:.1f} MB clip, ready in "
                  f"{time.monotonic() - started:.0f} s; nginx worker_processes "
                  f"{args.nginx_workers}; server: run.py, --event-loop {args.event_loop}, "
                  "rate limits off (every --*-rate-limit-per-minute 0)", flush=True)
            public = handed_out(server, video_id, None)
            print(f"{'case':34} {'reelhouse':>13} {'nginx':>13} {'ratio':>6}  target")
            serving_cases(base, "public", public, nginx_port, rounds, seconds)

            assert server.proc is not None
            sides = [Side("reelhouse", public.master, [server.proc.pid]),
                     Side("nginx", on(nginx_port, public.master), proc_pids(nginx.pid))]
            print(f"viewer simulation, public video ({watch:.0f} s each, joining over "
                  f"{ramp:.0f} s):", flush=True)
            search_started = time.monotonic()
            viewer_search(sides, start, watch, ramp, budget, int(chosen["procs"]))
            report_viewers(sides, time.monotonic() - search_started >= budget)

            api_json(server, "PATCH", f"/api/videos/{video_id}", token, {"privacy": "private"})
            private = handed_out(server, video_id, token)
            if "sig=" not in private.segment:
                print("note: the private video's segment URL carries no signature")
            serving_cases(base, "private", private, nginx_port, rounds, seconds)

            count, rss, latency = asyncio.run(
                slow_readers(server.port, server.proc.pid, private.original, private.master))
            time.sleep(3)  # descriptors shared for a couple of seconds are closed by then
            fds = len(os.listdir(f"/proc/{server.proc.pid}/fd"))
            print(f"slow readers: {count}/{SLOW_READERS} served, server RSS {rss:.0f} MB "
                  f"(target < 200), master playlist latency meanwhile "
                  f"{latency * 1000:.0f} ms; {fds} descriptors open after they left")
        finally:
            server.stop()
            nginx.terminate()
            try:
                nginx.wait(timeout=15)
            except subprocess.TimeoutExpired:
                nginx.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
