"""The real entry point (run.py) serving media under both event loops it offers: asyncio's
(the default; file bytes go out with loop.sendfile) and uvloop (which has no loop.sendfile,
so file bytes are read in a thread and written through the response)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import sqlite3
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from server.db import Database
from server.playback.files import CHUNK
from tests.playback.conftest import Tree
from tests.playback.test_clients import run

ROOT = Path(__file__).resolve().parents[2]
VIDEO = "runpyvideo01"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _seed(data: Path, tree: Tree) -> None:
    db = await Database.open(data / "reelhouse.sqlite3")
    await db.migrate()
    await db.close()
    with sqlite3.connect(data / "reelhouse.sqlite3") as conn:
        conn.execute("INSERT INTO users(id, username, password_hash, display_name)"
                     " VALUES (1, 'owner', 'x', 'Owner')")
        conn.execute("INSERT INTO channels(id, public_id, owner_id, handle, display_name)"
                     " VALUES (1, 'chan00000001', 1, 'owner', 'Owner')")
        cur = conn.execute(
            "INSERT INTO videos(public_id, owner_id, channel_id, title, privacy, status,"
            " duration, original_mime) VALUES (?, 1, 1, 't', 'public', 'ready', 4.0,"
            " 'video/mp4')", (VIDEO,))
        conn.executemany(
            "INSERT INTO renditions(video_id, name, kind, width, height, frame_rate, codecs,"
            " bandwidth, average_bandwidth, segments, duration) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(cur.lastrowid, r.name, r.kind, r.width, r.height, r.frame_rate, r.codecs,
              r.bandwidth, r.average_bandwidth, r.segments, r.duration)
             for r in tree.result.renditions])
    target = data / "media" / VIDEO
    shutil.copytree(tree.root, target)
    shutil.copy(tree.source, target / "original")


@pytest.fixture(params=["asyncio", "uvloop"])
async def served(request: pytest.FixtureRequest, tmp_path: Path, hls_tree: Tree
                 ) -> AsyncIterator[str]:
    data = tmp_path / "data"
    data.mkdir()
    await _seed(data, hls_tree)
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "run.py"), "--data-dir", str(data), "--port", str(port),
        "--access-log", "false", "--log-level", "WARNING", "--workers", "1",
        "--event-loop", request.param, cwd=ROOT)
    try:
        for _ in range(300):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}/api/videos/{VIDEO}"
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 20)


async def test_sendfile_path_of_run_py(served: str, hls_tree: Tree) -> None:
    original = hls_tree.source.read_bytes()
    size = len(original)
    async with aiohttp.ClientSession() as session:
        for _ in range(3):  # a kept-alive connection carries several bodies intact
            async with session.get(f"{served}/original") as resp:
                assert resp.status == 200 and await resp.read() == original
        cases = {"bytes=0-999": original[:1000], "bytes=-70000": original[-70000:],
                 f"bytes={size // 3}-": original[size // 3:]}
        for value, expected in cases.items():
            async with session.get(f"{served}/original", headers={"Range": value}) as resp:
                assert resp.status == 206 and await resp.read() == expected, value
        segment = hls_tree.root / "hls" / "360p" / "seg_00000.m4s"
        async with session.get(f"{served}/hls/360p/seg_00000.m4s") as resp:
            assert await resp.read() == segment.read_bytes()
    code, _, err = await run("ffmpeg", "-v", "error", "-i", f"{served}/hls/master.m3u8",
                             "-map", "0", "-f", "null", "-")
    assert code == 0 and not err.strip(), err
    code, _, err = await run("ffmpeg", "-v", "error", "-i", f"{served}/progressive/360p.mp4",
                             "-f", "null", "-")
    assert code == 0 and not err.strip(), err


async def test_large_files_arrive_intact(served: str, tmp_path: Path) -> None:
    """A file of many read chunks, whole and as a large range, on one kept-alive
    connection."""
    big = os.urandom(CHUNK * 40 + 12345)
    (tmp_path / "data" / "media" / VIDEO / "original").write_bytes(big)
    connector = aiohttp.TCPConnector(limit=1)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(f"{served}/original") as resp:
            assert resp.status == 200 and await resp.read() == big
        first, last = 1000, CHUNK * 20 + 999_999
        async with session.get(f"{served}/original",
                               headers={"Range": f"bytes={first}-{last}"}) as resp:
            assert resp.status == 206 and await resp.read() == big[first:last + 1]
        async with session.get(f"{served}/original", headers={"Range": "bytes=-10"}) as resp:
            assert await resp.read() == big[-10:]
