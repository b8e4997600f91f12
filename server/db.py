"""SQLite access: one serialised writer connection, one reader, numbered migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
Row = aiosqlite.Row
Params = Sequence[Any] | Mapping[str, Any]


async def _connect(path: Path) -> aiosqlite.Connection:
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    await conn.execute("PRAGMA busy_timeout=10000")
    await conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _migration_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("[0-9][0-9][0-9][0-9]_*.sql"))


class Database:
    """All writes go through `write`/`transaction` on one connection, serialised by a lock."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self._writer = writer
        self._reader = reader
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await _connect(path)
        reader = await _connect(path)
        return cls(writer, reader)

    async def close(self) -> None:
        await self._reader.close()
        await self._writer.close()

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        rows = await self.fetch_all(sql, params)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        # Execute and fetch in ONE call on the connection's thread. A statement left active
        # between two awaits keeps the reader's read transaction (and so its WAL snapshot)
        # open, and a concurrent query would then miss rows committed meanwhile.
        return list(await self._reader.execute_fetchall(sql, params))

    async def fetch_value(self, sql: str, params: Params = ()) -> Any:
        row = await self.fetch_one(sql, params)
        return None if row is None else row[0]

    async def write(self, sql: str, params: Params = ()) -> aiosqlite.Cursor:
        """One statement in its own transaction; returns the cursor (lastrowid, rowcount)."""
        async with self._write_lock:
            return await self._writer.execute(sql, params)

    async def write_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        async with self.transaction() as conn:
            await conn.executemany(sql, rows)

    async def write_returning(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._write_lock, self._writer.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """BEGIN IMMEDIATE on the writer; commit on success, roll back on any error."""
        async with self._write_lock:
            await self._writer.execute("BEGIN IMMEDIATE")
            try:
                yield self._writer
            except BaseException:
                await self._writer.execute("ROLLBACK")
                raise
            await self._writer.execute("COMMIT")

    async def migrate(self, directory: Path = MIGRATIONS_DIR) -> list[str]:
        await self.write(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name TEXT PRIMARY KEY, applied_at TEXT NOT NULL DEFAULT (datetime('now')))"
        )
        applied = {r[0] for r in await self.fetch_all("SELECT name FROM schema_migrations")}
        done: list[str] = []
        paths = await asyncio.to_thread(_migration_files, directory)
        for path in paths:
            if path.name in applied:
                continue
            script = await asyncio.to_thread(path.read_text, "utf-8")
            async with self._write_lock:
                # executescript commits first; the record goes in the same script so a
                # crash between the two cannot leave a half-applied migration recorded.
                escaped = path.name.replace("'", "''")
                await self._writer.executescript(
                    f"BEGIN;\n{script}\n"
                    f"INSERT INTO schema_migrations(name) VALUES ('{escaped}');\nCOMMIT;"
                )
            log.info("applied migration %s", path.name)
            done.append(path.name)
        return done
