"""tus upload throughput: Reelhouse against the official Node tus server, on the same disk.

Run from the repository root (the Node peer needs `npm ci`, which installs the
devDependencies @tus/server and @tus/file-store):

    make bench-upload                            # 1 GiB in 8 MiB PATCHes, 5 rounds
    .venv/bin/python bench/upload.py --mib 256   # a quicker run

The same client sends the same bytes to both servers, on loopback: tus creation, then
PATCH requests of 8 MiB on one keep-alive connection until the upload is complete (Python
http.client; the time runs from the first PATCH to the last answer). The servers:

    reelhouse    run.py in a subprocess, rate limits off, one transcoding worker; the
                 client signs up and sends a Bearer token. Each PATCH body goes to the
                 upload's file, with writeback started as it arrives; before answering
                 the last PATCH the server fsyncs the file, moves it into the video's
                 folder and queues its job (the bench waits, untimed, until the worker is
                 done with it).
    @tus/server  the official Node server (@tus/server with @tus/file-store, versions
                 from package.json) started by bench/tus-node-server.mjs. Its FileStore
                 writes each body through a Node write stream and never fsyncs: the last
                 answer may come while the bytes are still in the page cache.
    raw          (for information) the same bytes in 8 MiB write(2) calls to a file in
                 the same directory, then one fsync.

So Reelhouse does strictly more per upload than @tus/server (an fsync, a move, a job).
Rounds rotate the order of the three, with an untimed sync(2) before each run so that
nobody meets the previous run's writeback, and the medians are compared: a best-of-N
would reward whichever side had one lucky round on a shared, noisy machine. Prints the
rounds, each side's median throughput, the ratio Reelhouse / @tus/server (target >= 1.0)
and Reelhouse / raw (information only). Then one 2 GiB upload to Reelhouse with its RSS
sampled every 50 ms: the RSS before, at the peak and at the end (it must stay flat).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.uploads.serverproc import ServerProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
CHUNK = 8 << 20
BUSY = {"uploading", "uploaded", "queued", "processing"}
NODE_PATH = "/files"


def make_block() -> bytes:
    """8 MiB starting like an MP4 (so early sniffing lets it through), then varied bytes."""
    head = b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00isomiso2" + b"\x00\x00\x00\x08free"
    body = bytes(range(256)) * (CHUNK // 256)
    return (head + body)[:CHUNK]


def patch_all(port: int, path: str, headers: dict[str, str], total: int,
              block: bytes) -> float:
    """PATCHes `total` bytes to `path` on one connection; returns the seconds it took."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.perf_counter()
    offset = 0
    while offset < total:
        body = memoryview(block)[: min(CHUNK, total - offset)]
        conn.request("PATCH", path, body=body, headers={
            **headers, "Tus-Resumable": "1.0.0", "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream"})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204, (resp.status, path)
        offset = int(resp.getheader("Upload-Offset") or 0)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def create(port: int, path: str, headers: dict[str, str], total: int) -> tuple[str, str]:
    """tus creation; returns the upload's path and its Video-Id header (Reelhouse), if any."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", path, headers={
        **headers, "Tus-Resumable": "1.0.0", "Upload-Length": str(total),
        "Upload-Metadata": "filename YmVuY2gubXA0"})
    resp = conn.getresponse()
    resp.read()
    conn.close()
    assert resp.status == 201, (resp.status, path)
    return urlsplit(resp.getheader("Location") or "").path, resp.getheader("Video-Id") or ""


def settle(server: ServerProcess, token: str, video_id: str) -> None:
    """Wait (untimed) until the worker is done with the uploaded video.

    A completed upload queues a job that probes the file; left running, it would eat CPU
    and disk during whichever measurement comes next.
    """
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status, _, text = server.request("GET", f"/api/videos/{video_id}",
                                         headers={"Authorization": f"Bearer {token}"})
        if status != 200 or json.loads(text)["status"] not in BUSY:
            return
        time.sleep(0.2)


def reelhouse_upload(server: ServerProcess, token: str, total: int, block: bytes) -> float:
    auth = {"Authorization": f"Bearer {token}"}
    path, video_id = create(server.port, "/api/uploads", auth, total)
    elapsed = patch_all(server.port, path, auth, total, block)
    settle(server, token, video_id)
    return elapsed


def node_upload(port: int, total: int, block: bytes) -> float:
    path, _ = create(port, NODE_PATH, {}, total)
    elapsed = patch_all(port, path, {}, total, block)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("DELETE", path, headers={"Tus-Resumable": "1.0.0"})  # termination, untimed
    assert conn.getresponse().status == 204
    conn.close()
    return elapsed


def raw_write(directory: Path, total: int, block: bytes) -> float:
    path = directory / "raw-write.bin"
    started = time.perf_counter()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        written = 0
        while written < total:
            written += os.write(fd, memoryview(block)[: min(CHUNK, total - written)])
        os.fsync(fd)
    finally:
        os.close(fd)
    elapsed = time.perf_counter() - started
    path.unlink()
    return elapsed


class NodeTus:
    """bench/tus-node-server.mjs in a subprocess."""

    def __init__(self, directory: Path) -> None:
        if shutil.which("node") is None:
            raise SystemExit("node is not installed")
        if not (ROOT / "node_modules" / "@tus" / "server").is_dir():
            raise SystemExit("node_modules/@tus/server is missing: run `npm ci`")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["node", str(ROOT / "bench" / "tus-node-server.mjs"), "--port", str(self.port),
             "--path", NODE_PATH, "--dir", str(directory)],
            cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until it listens (or exits)
        if not line.startswith("listening"):
            raise SystemExit(f"@tus/server did not start ({self.proc.wait(10)})")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def version(package: str) -> str:
    path = ROOT / "node_modules" / package / "package.json"
    return str(json.loads(path.read_text())["version"])


def rss_during(server: ServerProcess, run: Callable[[], object]) -> tuple[int, int, int]:
    """(before, peak, after) RSS of the server while `run` runs, sampled every 50 ms."""
    before, peak = server.rss_bytes(), 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.rss_bytes())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        run()
    finally:
        done.set()
        sampler.join()
    return before, max(peak, before), server.rss_bytes()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=1024, help="bytes per upload, in MiB")
    parser.add_argument("--rounds", type=int, default=5,
                        help="rounds, rotating the order; medians compared")
    parser.add_argument("--rss-mib", type=int, default=2048,
                        help="size of the upload whose RSS is watched, in MiB")
    parser.add_argument("--dir", default=str(ROOT),
                        help="where the data directories go (default: the repository)")
    args = parser.parse_args()
    total = args.mib << 20
    block = make_block()
    times: dict[str, list[float]] = {"reelhouse": [], "@tus/server": [], "raw": []}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        data = Path(tmp) / "data"
        server = ServerProcess(data, workers=1).start()
        node = NodeTus(Path(tmp) / "tus-node")
        try:
            token = server.sign_up("bench")
            runs: dict[str, Callable[[], float]] = {
                "reelhouse": lambda: reelhouse_upload(server, token, total, block),
                "@tus/server": lambda: node_upload(node.port, total, block),
                "raw": lambda: raw_write(data, total, block),
            }
            order = list(runs)
            for i in range(args.rounds):
                for name in order[i % 3:] + order[: i % 3]:
                    os.sync()  # untimed: no dirty pages left from the previous run
                    times[name].append(runs[name]())
            os.sync()
            before, peak, after = rss_during(
                server, lambda: reelhouse_upload(server, token, args.rss_mib << 20, block))
        finally:
            node.stop()
            server.stop()
    mib = total / (1 << 20)
    print("rounds (s):", "  ".join(
        f"{name} " + " ".join(f"{t:.2f}" for t in values) for name, values in times.items()))
    rate = {name: mib / statistics.median(values) for name, values in times.items()}
    labels = {"reelhouse": "reelhouse (fsync, move, job)",
              "@tus/server": f"@tus/server {version('@tus/server')} "
                             f"(file-store {version('@tus/file-store')}, no fsync)",
              "raw": "raw write + fsync"}
    for name, label in labels.items():
        print(f"{label:48} {mib:.0f} MiB in {mib / rate[name]:6.2f} s (median) "
              f"= {rate[name]:5.0f} MiB/s")
    ratio = rate["reelhouse"] / rate["@tus/server"]
    print(f"ratio reelhouse/@tus/server: {ratio:.2f} (target >= 1.0) "
          f"{'ok' if ratio >= 1.0 else 'BELOW'}")
    print(f"ratio reelhouse/raw: {rate['reelhouse'] / rate['raw']:.2f} (information only)")
    print(f"reelhouse RSS during a {args.rss_mib} MiB upload: start {before / 2**20:.0f} MB, "
          f"peak {peak / 2**20:.0f} MB, end {after / 2**20:.0f} MB "
          f"(peak - start {(peak - before) / 2**20:+.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
