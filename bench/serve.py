"""Media serving, Reelhouse against nginx, on the same files, in one run.

    .venv/bin/python bench/serve.py [--nginx-workers N]   (about 2 minutes; wrk, nginx)

Makes a data directory with one public video (a 2 MB segment, a media playlist and a
64 MB original), starts `run.py` on it (rate limits and access log off) and nginx with a
generated config serving the same folder at the same URLs, both on 127.0.0.1 (one server
process; nginx with one worker unless --nginx-workers says otherwise; the server copies
sendfile pieces over 4 MiB from a thread, so it may use a second core), and drives both with
wrk (1 thread, 64 connections, 3 s runs, alternating four rounds per case and keeping each
side's best round):

    segments   GET of a 2 MB segment                        target >= 0.8 of nginx
    ranges     GET of random 1 MB ranges of the 64 MB file  target >= 0.7
    playlists  GET of a small media playlist                target >= 0.5 (requests/s)

Then it holds 500 slow readers on the large file open at once (each reads 4 KB every
half second) and reports the server's resident memory (target < 200 MB).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VIDEO = "benchvideo01"
SEGMENT = f"/api/videos/{VIDEO}/hls/720p/seg_00000.m4s"
PLAYLIST = f"/api/videos/{VIDEO}/hls/720p/index.m3u8"
ORIGINAL = f"/api/videos/{VIDEO}/original"
BIG = 64 << 20
DURATION = "3s"
ROUNDS = 4  # alternated; the best round of each side counts (a loaded machine is noisy)
CONNECTIONS = 64
SLOW_READERS = 500

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
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    open_file_cache max=1000 inactive=60s;
    types {{ application/vnd.apple.mpegurl m3u8; video/mp4 m4s; }}
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


def make_files(data: Path) -> None:
    media = data / "media" / VIDEO
    rendition = media / "hls" / "720p"
    rendition.mkdir(parents=True)
    (rendition / "seg_00000.m4s").write_bytes(os.urandom(2 << 20))
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-TARGETDURATION:6",
             "#EXT-X-MEDIA-SEQUENCE:0", "#EXT-X-PLAYLIST-TYPE:VOD",
             "#EXT-X-INDEPENDENT-SEGMENTS", '#EXT-X-MAP:URI="init.mp4"']
    for i in range(10):
        lines += ["#EXTINF:6.00000,", f"seg_{i:05d}.m4s"]
    (rendition / "index.m3u8").write_text("\n".join([*lines, "#EXT-X-ENDLIST"]) + "\n")
    with open(media / "original", "wb") as fh:
        block = os.urandom(1 << 20)
        for _ in range(BIG >> 20):
            fh.write(block)


def seed_database(data: Path) -> None:
    """Migrations via the server's own code, then one user, channel and public video."""
    sys.path.insert(0, str(ROOT))
    from server.db import Database

    async def migrate() -> None:
        db = await Database.open(data / "reelhouse.sqlite3")
        await db.migrate()
        await db.close()

    asyncio.run(migrate())
    with sqlite3.connect(data / "reelhouse.sqlite3") as conn:
        conn.execute("INSERT INTO users(id, username, password_hash, display_name)"
                     " VALUES (1, 'bench', 'x', 'Bench')")
        conn.execute("INSERT INTO channels(id, public_id, owner_id, handle, display_name,"
                     " is_default) VALUES (1, 'benchchan001', 1, 'bench', 'Bench', 1)")
        conn.execute("INSERT INTO videos(public_id, owner_id, channel_id, title, privacy,"
                     " status, original_mime) VALUES (?, 1, 1, 'bench', 'public', 'ready',"
                     " 'video/mp4')", (VIDEO,))


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited early ({proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def wrk(url: str, script: Path | None = None, duration: str = DURATION) -> tuple[float, float]:
    """(requests/s, bytes/s) from wrk."""
    argv = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{duration}", "--timeout", "10s"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run([*argv, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    rate = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out)
    assert rate is not None
    scale = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}[rate.group(2)]
    if re.search(r"Non-2xx or 3xx responses", out):
        raise SystemExit(f"errors from {url}:\n{out}")
    return rps, float(rate.group(1)) * scale


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


async def slow_readers(port: int, pid: int) -> tuple[int, float, float]:
    """Opens SLOW_READERS connections reading the big file slowly; returns how many got
    a 200, the server's RSS while they were all open, and a playlist's latency then."""
    async def reader(stop: asyncio.Event, ok: list[int]) -> None:
        reader_, writer = await asyncio.open_connection("127.0.0.1", port, limit=4096)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        writer.write(f"GET {ORIGINAL} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
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
    rss = rss_mb(pid)
    started = time.perf_counter()
    r, w = await asyncio.open_connection("127.0.0.1", port)
    w.write(f"GET {PLAYLIST} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await r.read()
    latency = time.perf_counter() - started
    w.close()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    return len(ok), rss, latency


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nginx-workers", default="1", help="worker_processes (or auto)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="reelhouse-bench-") as tmp:
        base = Path(tmp)
        data = base / "data"
        make_files(data)
        seed_database(data)
        script = base / "ranges.lua"
        script.write_text(RANGE_SCRIPT % ((BIG >> 20) - 1, ORIGINAL))
        ours_port, nginx_port = free_port(), free_port()
        (base / "nginx.conf").write_text(NGINX_CONF.format(
            dir=base, port=nginx_port, media=data / "media", workers=args.nginx_workers))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        server = subprocess.Popen(
            [sys.executable, str(ROOT / "run.py"), "--data-dir", str(data),
             "--port", str(ours_port), "--access-log", "false", "--log-level", "WARNING",
             "--rate-limit-per-minute", "1000000000", "--workers", "1"],
            cwd=ROOT, env=env)
        nginx = subprocess.Popen(["nginx", "-c", str(base / "nginx.conf"), "-p", str(base)])
        try:
            wait_port(ours_port, server)
            wait_port(nginx_port, nginx)
            cases = [("segments (2 MB)", SEGMENT, None, 1, 0.8),
                     ("ranges (1 MB of 64 MB)", ORIGINAL, script, 1, 0.7),
                     ("playlists", PLAYLIST, None, 0, 0.5)]
            print(f"{'case':24} {'reelhouse':>14} {'nginx':>14} {'ratio':>7} target")
            for name, path, lua, use_bytes, target in cases:
                wrk(f"http://127.0.0.1:{ours_port}{path}", lua, "2s")  # warm-up / sanity
                runs = [(wrk(f"http://127.0.0.1:{ours_port}{path}", lua),
                         wrk(f"http://127.0.0.1:{nginx_port}{path}", lua))
                        for _ in range(ROUNDS)]
                ours = max((r[0] for r in runs), key=lambda x: x[use_bytes])
                peer = max((r[1] for r in runs), key=lambda x: x[use_bytes])
                unit = "MB/s" if use_bytes else "req/s"
                a, b = (ours[1] / 2**20, peer[1] / 2**20) if use_bytes else (ours[0], peer[0])
                ratio = a / b
                verdict = "ok" if ratio >= target else "BELOW"
                print(f"{name:24} {a:9.0f} {unit:5}{b:9.0f} {unit:5}{ratio:7.2f} "
                      f">={target} {verdict}", flush=True)
            count, rss, latency = asyncio.run(slow_readers(ours_port, server.pid))
            print(f"nginx worker_processes {args.nginx_workers}; server: run.py (uvloop)")
            time.sleep(3)  # descriptors shared for a couple of seconds are closed by then
            fds = len(os.listdir(f"/proc/{server.pid}/fd"))
            print(f"slow readers: {count}/{SLOW_READERS} served, server RSS {rss:.0f} MB "
                  f"(target < 200), playlist latency meanwhile {latency * 1000:.0f} ms; "
                  f"{fds} descriptors open after they left")
        finally:
            for proc in (server, nginx):
                proc.terminate()
            for proc in (server, nginx):
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
