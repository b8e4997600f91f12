"""Reads that run concurrently never see a stale snapshot of committed writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from server.db import Database


async def test_concurrent_reads_see_every_committed_write(tmp_path: Path) -> None:
    db = await Database.open(tmp_path / "db.sqlite3")
    try:
        await db.write("CREATE TABLE t (id INTEGER PRIMARY KEY, x INTEGER)")
        await db.write_many("INSERT INTO t(x) VALUES (?)", [(i,) for i in range(500)])

        async def insert_then_read(n: int) -> bool:
            cursor = await db.write("INSERT INTO t(x) VALUES (?)", (10_000 + n,))
            row = await db.fetch_one("SELECT x FROM t WHERE id = ?", (cursor.lastrowid,))
            return row is not None and row["x"] == 10_000 + n

        async def scan() -> None:
            for _ in range(20):
                await db.fetch_all("SELECT * FROM t")

        results = await asyncio.gather(*(insert_then_read(n) for n in range(100)),
                                       *(scan() for _ in range(4)))
        assert all(r for r in results if r is not None)
    finally:
        await db.close()
