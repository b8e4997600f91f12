"""Slow and idle clients shed (issue 22): a request head that has not arrived within
header_timeout closes its connection, at most max_connections_per_address connections per
client address (trusted proxies exempt).

The 500 trickling sockets go to run.py as a real process (its own event loop, as in
production); the rest uses server/edge/listen.py in this process, the same guard."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.edge.listen import listening
from tests.conftest import METRICS, METRICS_TOKEN, make_config
from tests.helpers import PASSWORD
from tests.server.test_run import running

TRICKLERS = 500
HEADER_TIMEOUT = 2.5
LINE_SECONDS = 1.0  # each trickler sends a header line this often: never a whole head
GIVE_UP = HEADER_TIMEOUT + 6.0
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
WHOLE_HEAD = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"


def _enough_files(count: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count:
        if hard < count:
            pytest.fail(f"needs {count} open files; the hard limit is {hard} (raise it)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (count, hard))


async def _trickle(port: int, connects: asyncio.Semaphore
                  ) -> tuple[float | None, float | None, bytes]:
    """A slowloris client: a header line every LINE_SECONDS, never the blank line.

    Returns how long the server kept it open, counted from before the connect (no less
    than the server's own clock, which starts at its accept) and from the connect's end
    (no more), None for both when it was still open at GIVE_UP; and what it answered.
    """
    loop = asyncio.get_running_loop()
    async with connects:  # not all at once: past the listen backlog a SYN waits 1 s
        before = loop.time()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
    connected = loop.time()
    writer.write(SLOW_HEAD)
    received = b""
    try:
        for line in range(int(GIVE_UP / LINE_SECONDS)):
            try:
                data = await asyncio.wait_for(reader.read(4096), LINE_SECONDS)
            except TimeoutError:
                writer.write(f"X-Trickle-{line}: {line}\r\n".encode())
                continue
            received += data
            if not data:
                break
        else:
            return None, None, received
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        writer.close()
    closed = loop.time()
    return closed - before, closed - connected, received


async def _probe(base: str, until: asyncio.Event) -> list[float]:
    """Another client, answered while the tricklers hold their sockets: request latencies."""
    latencies: list[float] = []
    async with aiohttp.ClientSession() as http:
        while not until.is_set():
            for path in ("/healthz", "/api/videos", "/"):
                started = time.perf_counter()
                async with http.get(base + path) as resp:
                    await resp.read()
                    assert resp.status == 200, path
                latencies.append(time.perf_counter() - started)
            await asyncio.sleep(0.05)
    return latencies


def _open_files(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def _shed_count(http: aiohttp.ClientSession, base: str, reason: str) -> float:
    async with http.get(base + "/metrics", headers=METRICS) as resp:
        text = await resp.text()
    for family in text_string_to_metric_families(text):
        if family.name == "reelhouse_connections_shed":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels["reason"] == reason:
                    return sample.value
    return 0.0


@pytest.mark.timeout(120)
@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_500_trickling_sockets_are_shed_while_others_are_answered(
    tmp_path: Path, event_loop: str,
) -> None:
    _enough_files(4 * TRICKLERS)
    args = ["--host", "127.0.0.1", "--data-dir", str(tmp_path / "data"),
            "--event-loop", event_loop,
            "--access-log", "false", "--log-level", "WARNING",
            "--header-timeout", str(HEADER_TIMEOUT),
            "--max-connections-per-address", str(2 * TRICKLERS),
            "--rate-limit-per-minute", "0", "--metrics-token", METRICS_TOKEN]
    async with running(tmp_path, args) as server:
        port = int(server.base.rsplit(":", 1)[1])
        pid = server.proc.pid
        idle_files = _open_files(pid)
        done = asyncio.Event()
        probe = asyncio.create_task(_probe(server.base, done))
        started = time.monotonic()
        connects = asyncio.Semaphore(64)
        tricklers = [asyncio.create_task(_trickle(port, connects)) for _ in range(TRICKLERS)]
        await asyncio.sleep(HEADER_TIMEOUT / 2)
        busy_files = _open_files(pid)
        results = await asyncio.gather(*tricklers)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.3)
        done.set()
        latencies = await probe
        after_files = _open_files(pid)
        async with aiohttp.ClientSession() as http:
            shed = await _shed_count(http, server.base, "header_timeout")
    assert all(r[0] is not None for r in results), "a trickler was never closed"
    at_least = [r[0] for r in results if r[0] is not None]
    at_most = [r[1] for r in results if r[1] is not None]
    answers = {r[2] for r in results}
    print(f"\n{event_loop}: {TRICKLERS} tricklers, header_timeout {HEADER_TIMEOUT} s: open "
          f"for min {min(at_least):.2f} s, median {statistics.median(at_most):.2f} s, max "
          f"{max(at_most):.2f} s; all gone {elapsed:.2f} s after the first connect")
    print(f"other client: {len(latencies)} requests, median "
          f"{statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms")
    print(f"server open files: idle {idle_files}, with the tricklers {busy_files}, after "
          f"{after_files}; shed for header_timeout: {shed:.0f}")
    assert answers == {b""}, "nothing is answered to a head that never completed"
    assert min(at_least) >= HEADER_TIMEOUT - 0.05
    assert max(at_most) < HEADER_TIMEOUT + 1.5  # bytes trickling in do not extend it
    assert busy_files >= idle_files + TRICKLERS * 0.9  # they really were open at once
    assert after_files < idle_files + 20
    assert shed >= TRICKLERS
    assert len(latencies) >= 30 and max(latencies) < 1.0


@asynccontextmanager
async def served(tmp_path: Path, **settings: object) -> AsyncIterator[str]:
    app = create_app(make_config(tmp_path / "data", **settings))
    async with listening(app, host="127.0.0.1", port=0) as server:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


async def _connect(base: str, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = base.removeprefix("http://").rsplit(":", 1)
    return await asyncio.open_connection(host, int(port), local_addr=(source, 0))


async def _answered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Whether a whole request on this connection gets an answer (False: closed)."""
    with contextlib.suppress(ConnectionError):
        writer.write(WHOLE_HEAD)
        line = await asyncio.wait_for(reader.readline(), 5)
        if not line:
            return False
        assert line.startswith(b"HTTP/1.1 200"), line
        length = 0
        while (header := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = header.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        return True
    return False


@pytest.mark.timeout(60)
async def test_connections_per_address_with_a_trusted_proxy_exempt(tmp_path: Path) -> None:
    """The 257th connection from one address is closed at once, unanswered; a trusted
    proxy (127.0.0.2 here) is not counted; a closed connection makes room again."""
    _enough_files(3000)
    limit = 256
    async with served(tmp_path, trusted_proxies="127.0.0.2", header_timeout=30.0) as base:
        held = [await _connect(base, "127.0.0.1") for _ in range(limit)]
        assert all(await asyncio.gather(*(_answered(r, w) for r, w in held)))
        loop = asyncio.get_running_loop()
        started = loop.time()
        extra = await _connect(base, "127.0.0.1")
        assert not await _answered(*extra)
        refused_in = loop.time() - started
        extra[1].close()
        proxied = [await _connect(base, "127.0.0.2") for _ in range(limit + 44)]
        assert all(await asyncio.gather(*(_answered(r, w) for r, w in proxied)))
        # Room again once one of the 256 goes (the server sees the close at once).
        held[0][1].close()
        await held[0][1].wait_closed()
        for _ in range(50):
            again = await _connect(base, "127.0.0.1")
            if await _answered(*again):
                break
            again[1].close()
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("a freed slot was not given to the next connection")
        async with aiohttp.ClientSession() as http:
            # This session comes from 127.0.0.1 too, over the limit again.
            with pytest.raises(aiohttp.ClientError):
                async with http.get(base + "/healthz") as resp:
                    await resp.read()
            proxy = aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))
            async with aiohttp.ClientSession(connector=proxy) as via_proxy:
                shed = await _shed_count(via_proxy, base, "per_address")
        for _, writer in [*held, *proxied, again]:
            writer.close()
    print(f"\n257th connection closed unanswered within {refused_in * 1000:.1f} ms; "
          f"{limit + 44} through the trusted proxy answered; shed per address: {shed:.0f}")
    assert refused_in < 1.0 and shed >= 2


async def _sign_in(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    async with http.post(base + "/api/users",
                         json={"username": "alice", "password": PASSWORD}) as resp:
        assert resp.status == 201
    async with http.post(base + "/api/auth/login",
                         json={"username": "alice", "password": PASSWORD}) as resp:
        tokens = await resp.json()
    http.cookie_jar.clear()
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.mark.timeout(60)
async def test_the_deadline_is_for_heads_not_for_idle_or_long_requests(tmp_path: Path
                                                                      ) -> None:
    """Idle keep-alive lasts as before (aiohttp's 75 s), a WebSocket outlives the head's
    deadline, and a later head on a kept-alive connection gets a deadline of its own."""
    timeout = 1.0
    async with served(tmp_path, header_timeout=timeout) as base:
        reader, writer = await _connect(base, "127.0.0.1")
        assert await _answered(reader, writer)
        await asyncio.sleep(timeout * 2)  # idle between requests: not a late head
        assert await _answered(reader, writer)
        loop = asyncio.get_running_loop()
        writer.write(SLOW_HEAD)  # the next head starts, and never ends
        started = loop.time()
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        late = loop.time() - started
        writer.close()
        # A connection that never sends a byte: its first head's deadline runs from the start.
        reader, writer = await _connect(base, "127.0.0.1")
        started = loop.time()
        with contextlib.suppress(ConnectionError):
            assert await asyncio.wait_for(reader.read(), 5) == b""
        silent = loop.time() - started
        writer.close()
        async with aiohttp.ClientSession() as http:
            auth = await _sign_in(http, base)
            async with http.ws_connect(base + "/api/ws", headers=auth) as ws:
                assert (await ws.receive_json(timeout=2))["type"] == "hello"
                await asyncio.sleep(timeout * 2.5)
                await ws.send_json({"type": "ping"})
                msg = await ws.receive(timeout=2)
                assert msg.type is WSMsgType.TEXT and "pong" in msg.data
            async with http.get(base + "/healthz") as resp:
                assert resp.status == 200
    print(f"\nheader_timeout {timeout} s: a late second head closed after {late:.2f} s, "
          f"a silent connection after {silent:.2f} s")
    assert timeout - 0.1 <= late < timeout + 1.0
    assert timeout - 0.1 <= silent < timeout + 1.0
