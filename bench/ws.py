"""WebSocket fan-out: Reelhouse against a bare aiohttp broadcast server, in one run.

    .venv/bin/python bench/ws.py                 # 10,000 clients (default)
    .venv/bin/python bench/ws.py --clients 2000 --procs 8 --rounds 1

For each server: N WebSocket clients on loopback, spread over several client processes
(separate from the server), wait for one event; the bench publishes it and records when
every client has it (p50, p99, max, measured from just before the publish request) and
the server's RSS growth per connection (VmRSS after delivery minus before connecting).

Reelhouse runs as `run.py` in a subprocess (rate limits and the per-user cap on live
connections off, `--test-hooks true`).
Its clients authenticate with another account's access token (`?token=`) and send
{"type": "subscribe", "topic": "channel:<id>"}. The event is published by
`POST /api/admin/test-hooks/publish`, which creates a public video and marks it ready
through the same `server.events.video_status_changed` call the transcoding pipeline
makes (notifications stored, then published on the channel topic). The peer is the
few lines in BARE_SERVER: a set of sockets and a loop of send_str. Prints both results
and the ratios of the medians over the rounds (targets: p99 and RSS per connection at
most 1.5x the bare server). Loopback figures swing from run to run on a shared machine:
that is why the servers take turns going first and the medians are compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MAX_CLIENTS = 19_000  # one fd per client on the server; the hard limit is 20,000 per process
DELIVERY_TIMEOUT = 60.0

BARE_SERVER = r"""
import json, sys
import uvloop
from aiohttp import web

clients = set()

async def ws_handler(request):
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    clients.add(ws)
    try:
        async for _ in ws:
            pass
    finally:
        clients.discard(ws)
    return ws

async def publish(request):
    text = json.dumps({"type": "video.published", "video": {"id": "x", "title": "bench"}})
    for ws in list(clients):
        await ws.send_str(text)
    return web.Response(text=str(len(clients)))

app = web.Application()
app.router.add_get("/ws", ws_handler)
app.router.add_post("/publish", publish)
uvloop.install()
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


# -- client worker (a separate process) ---------------------------------------------------

async def client_worker(url: str, count: int, subscribe: str | None) -> None:
    connected = received = 0
    times: list[float | None] = [None] * count
    stop = asyncio.Event()
    gate = asyncio.Semaphore(32)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(i: int) -> None:
            nonlocal connected, received
            async with gate:
                for attempt in range(20):
                    try:
                        ws = await session.ws_connect(url, autoping=True, max_msg_size=0)
                        break
                    except (aiohttp.ClientError, OSError):
                        await asyncio.sleep(0.2 * (attempt + 1))
                else:
                    raise RuntimeError("could not connect")
                if subscribe:
                    await ws.send_str(subscribe)
                    while '"subscribed"' not in (await ws.receive_str()):
                        pass
            connected += 1
            if connected == count:
                print("ready", flush=True)
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT and "video.published" in msg.data:
                    times[i] = time.time()
                    received += 1
                    if received == count:
                        print("done", flush=True)
                    break
            await stop.wait()
            await ws.close()

        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.readline)  # "report"
        print("times " + json.dumps(times), flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)  # "stop"
        stop.set()
        await asyncio.wait(tasks, timeout=10)


# -- the conductor ------------------------------------------------------------------------

async def wait_http(url: str, deadline: float) -> None:
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} never answered")


async def start_clients(url: str, clients: int, procs: int,
                        subscribe: str | None) -> list[asyncio.subprocess.Process]:
    share = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    workers = []
    for count in share:
        args = [PYTHON, __file__, "--worker", url, str(count)]
        if subscribe:
            args.append(subscribe)
        workers.append(await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE))
    for worker in workers:
        assert worker.stdout is not None
        line = await asyncio.wait_for(worker.stdout.readline(), 240)
        if line.strip() != b"ready":
            raise RuntimeError(f"a client process failed: {line!r}")
    return workers


async def collect(workers: list[asyncio.subprocess.Process]) -> list[float | None]:
    times: list[float | None] = []
    for worker in workers:
        assert worker.stdin is not None and worker.stdout is not None
        worker.stdin.write(b"report\n")
        await worker.stdin.drain()
        line = b""
        while not line.startswith(b"times "):
            line = await asyncio.wait_for(worker.stdout.readline(), 60)
        times += json.loads(line.decode().removeprefix("times "))
    return times


async def stop_clients(workers: list[asyncio.subprocess.Process]) -> None:
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(b"stop\n")
        await worker.stdin.drain()
    for worker in workers:
        try:
            await asyncio.wait_for(worker.wait(), 20)
        except TimeoutError:
            worker.kill()


async def run_round(name: str, server_pid: int, url: str, clients: int, procs: int,
                    subscribe: str | None, publish: Any) -> dict[str, float]:
    await asyncio.sleep(0.5)
    base = rss_bytes(server_pid)
    workers = await start_clients(url, clients, procs, subscribe)
    try:
        connected = rss_bytes(server_pid)
        await asyncio.sleep(0.5)
        started = time.time()
        await publish()
        answered = time.time() - started
        # Each client process says "done" once all its clients have the event.
        for worker in workers:
            assert worker.stdout is not None
            try:
                await asyncio.wait_for(worker.stdout.readline(), DELIVERY_TIMEOUT)
            except TimeoutError:
                break
        times = await collect(workers)
        after = rss_bytes(server_pid)
    finally:
        await stop_clients(workers)
    got = sorted(t - started for t in times if t is not None)
    missing = len(times) - len(got)
    result = {
        "clients": float(len(times)), "missing": float(missing),
        "p50": statistics.median(got) if got else float("nan"),
        "p99": got[min(len(got) - 1, int(len(got) * 0.99))] if got else float("nan"),
        "max": got[-1] if got else float("nan"),
        "rss_per_conn": (max(after, connected) - base) / clients,
        "publish_request": answered,
    }
    print(f"{name:>9}: {clients} clients, missing {missing}; delivery p50 "
          f"{result['p50'] * 1000:.0f} ms, p99 {result['p99'] * 1000:.0f} ms, max "
          f"{result['max'] * 1000:.0f} ms (publish request answered after "
          f"{answered * 1000:.0f} ms); RSS {base / 2**20:.0f} -> "
          f"{connected / 2**20:.0f} (connected) -> {after / 2**20:.0f} MB (delivered), "
          f"{result['rss_per_conn'] / 1024:.1f} KB per connection", flush=True)
    return result


async def sign_in(base_url: str, name: str) -> dict[str, Any]:
    account = {"username": name, "password": "bench password 1"}
    async with aiohttp.ClientSession() as session:
        async with session.post(base_url + "/api/users", json=account) as resp:
            profile = await resp.json()
        async with session.post(base_url + "/api/auth/login", json=account) as resp:
            return {**(await resp.json()), "profile": profile}


async def bench_reelhouse(clients: int, procs: int) -> dict[str, float]:
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="reelhouse-bench-") as data:
        server = await asyncio.create_subprocess_exec(
            PYTHON, str(ROOT / "run.py"), "--port", str(port), "--data-dir", data,
            "--access-log", "false", "--log-level", "WARNING", "--test-hooks", "true",
            "--rate-limit-per-minute", "100000000", "--rate-limit-user-per-minute",
            "100000000", "--auth-rate-limit-per-minute", "100000", "--workers", "1",
            "--ws-connections-per-user", "0",  # every client is the same watcher
            cwd=ROOT)
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_http(base_url + "/healthz", time.monotonic() + 60)
            # The publisher (the first account: an admin) and the watchers (another
            # account, whose API token every client uses) are different people.
            publisher = await sign_in(base_url, "publisher")
            watcher = await sign_in(base_url, "watcher")
            headers = {"Authorization": f"Bearer {publisher['access_token']}"}
            token = watcher["access_token"]
            channel = publisher["profile"]["channels"][0]["id"]
            subscribe = json.dumps({"type": "subscribe", "topic": f"channel:{channel}"})

            async def publish() -> None:
                async with aiohttp.ClientSession() as session, session.post(
                    base_url + "/api/admin/test-hooks/publish", headers=headers,
                    json={"title": "bench"},
                ) as resp:
                    assert resp.status == 201, await resp.text()

            url = f"ws://127.0.0.1:{port}/api/ws?token={token}"
            return await run_round("reelhouse", server.pid, url, clients, procs, subscribe,
                                   publish)
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(server.wait(), 30)
            except TimeoutError:
                server.kill()


async def bench_bare(clients: int, procs: int) -> dict[str, float]:
    port = free_port()
    server = await asyncio.create_subprocess_exec(PYTHON, "-c", BARE_SERVER, str(port))
    try:
        base_url = f"http://127.0.0.1:{port}"
        await wait_http(base_url + "/ws", time.monotonic() + 30)

        async def publish() -> None:
            async with aiohttp.ClientSession() as session, \
                    session.post(base_url + "/publish") as resp:
                assert resp.status == 200

        return await run_round("bare", server.pid, f"ws://127.0.0.1:{port}/ws", clients,
                               procs, None, publish)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(server.wait(), 30)
        except TimeoutError:
            server.kill()


async def main(clients: int, procs: int, rounds: int) -> int:
    print(f"{clients} WebSocket clients over {procs} client processes, "
          f"{os.cpu_count()} cores, {rounds} rounds (servers alternate who goes first)",
          flush=True)
    ours: list[dict[str, float]] = []
    bare: list[dict[str, float]] = []
    for n in range(rounds):
        if n % 2:
            bare.append(await bench_bare(clients, procs))
            ours.append(await bench_reelhouse(clients, procs))
        else:
            ours.append(await bench_reelhouse(clients, procs))
            bare.append(await bench_bare(clients, procs))

    def median(results: list[dict[str, float]], key: str) -> float:
        return statistics.median(r[key] for r in results)

    p99 = median(ours, "p99") / median(bare, "p99")
    rss = median(ours, "rss_per_conn") / median(bare, "rss_per_conn")
    print(f"medians: reelhouse p99 {median(ours, 'p99') * 1000:.0f} ms, "
          f"{median(ours, 'rss_per_conn') / 1024:.1f} KB/conn; bare p99 "
          f"{median(bare, 'p99') * 1000:.0f} ms, {median(bare, 'rss_per_conn') / 1024:.1f} "
          "KB/conn")
    print(f"ratio reelhouse/bare: p99 delivery {p99:.2f}x (target <= 1.5), "
          f"RSS per connection {rss:.2f}x (target <= 1.5)")
    return 0 if all(r["missing"] == 0 for r in ours + bare) else 1


def cli() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        import uvloop

        uvloop.install()
        url, count = sys.argv[2], int(sys.argv[3])
        asyncio.run(client_worker(url, count, sys.argv[4] if len(sys.argv) > 4 else None))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=10_000,
                        help=f"WebSocket clients per server (1..{MAX_CLIENTS})")
    parser.add_argument("--procs", type=int, default=4, help="client processes (1..32)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds per server (1..9); the ratios compare medians")
    args = parser.parse_args()
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.procs <= 32 \
            or not 1 <= args.rounds <= 9:
        parser.error(f"--clients must be 1..{MAX_CLIENTS}, --procs 1..32, --rounds 1..9")
    import uvloop

    uvloop.install()
    return asyncio.run(main(args.clients, args.procs, args.rounds))


if __name__ == "__main__":
    sys.exit(cli())
