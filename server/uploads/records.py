"""The `uploads` table: which upload belongs to whom, its length, expiry and video."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, replace

from server.db import Database, Row

RECEIVING, COMPLETE, FAILED, EXPIRED = "receiving", "complete", "failed", "expired"


@dataclass(frozen=True)
class Upload:
    id: int
    public_id: str
    owner_id: int
    video_id: int | None
    video_public_id: str | None
    length: int | None
    metadata: str
    concat: str | None
    parts: tuple[str, ...]
    state: str
    error: str | None
    created_at: float
    expires_at: float

    @classmethod
    def from_row(cls, row: Row) -> Upload:
        return cls(
            id=row["id"], public_id=row["public_id"], owner_id=row["owner_id"],
            video_id=row["video_id"], video_public_id=row["video_public_id"],
            length=row["length"], metadata=row["metadata"], concat=row["concat"],
            parts=tuple(json.loads(row["parts"])), state=row["state"], error=row["error"],
            created_at=row["created_at"], expires_at=row["expires_at"],
        )

    @property
    def is_final(self) -> bool:
        return self.concat == "final"

    @property
    def is_partial(self) -> bool:
        return self.concat == "partial"

    def expired(self, now: float | None = None) -> bool:
        if self.state == EXPIRED:
            return True
        return self.state == RECEIVING and self.expires_at < (now or time.time())


_SELECT = ("SELECT u.*, v.public_id AS video_public_id FROM uploads u"
           " LEFT JOIN videos v ON v.id = u.video_id")


def new_upload_id() -> str:
    return secrets.token_urlsafe(18)  # 144 random bits: an upload URL is a capability


async def insert_upload(
    db: Database, *, owner_id: int, video_id: int | None, length: int | None, metadata: str,
    concat: str | None, parts: list[str], expiry_seconds: int,
) -> Upload:
    public_id = new_upload_id()
    now = time.time()
    await db.write(
        "INSERT INTO uploads(public_id, owner_id, video_id, length, metadata, concat, parts,"
        " created_at, expires_at) VALUES (?,?,?,?,?,?,?,?,?)",
        (public_id, owner_id, video_id, length, metadata, concat, json.dumps(parts), now,
         now + expiry_seconds),
    )
    found = await find_upload(db, public_id)
    assert found is not None
    return found


async def find_upload(db: Database, public_id: str) -> Upload | None:
    row = await db.fetch_one(_SELECT + " WHERE u.public_id = ?", (public_id,))
    return None if row is None else Upload.from_row(row)


async def set_length(db: Database, upload: Upload, length: int) -> None:
    await db.write("UPDATE uploads SET length = ? WHERE id = ? AND length IS NULL",
                   (length, upload.id))


async def record_activity(db: Database, upload: Upload, expiry_seconds: int,
                          received: int) -> Upload:
    """After each request: push the expiry back and show the bytes received on the video."""
    expires_at = time.time() + expiry_seconds
    async with db.transaction() as conn:
        await conn.execute("UPDATE uploads SET expires_at = ? WHERE id = ?",
                           (expires_at, upload.id))
        if upload.video_id is not None:
            await conn.execute("UPDATE videos SET bytes_received = ? WHERE id = ?"
                               " AND status = 'uploading'", (received, upload.video_id))
    return replace(upload, expires_at=expires_at)


async def set_state(db: Database, upload_id: int, state: str, error: str | None = None) -> None:
    completed = None if state == RECEIVING else time.time()  # when it ended, any way
    await db.write("UPDATE uploads SET state = ?, error = ?, completed_at = ? WHERE id = ?",
                   (state, error, completed, upload_id))


async def delete_upload(db: Database, upload_id: int) -> None:
    await db.write("DELETE FROM uploads WHERE id = ?", (upload_id,))


async def delete_unfinished_video(db: Database, video_id: int) -> None:
    """A video whose upload ended before its last byte: nothing of it remains to show."""
    await db.write("DELETE FROM videos WHERE id = ? AND status = 'uploading'", (video_id,))


async def finals_using(db: Database, owner_id: int, partial_id: str) -> list[Upload]:
    rows = await db.fetch_all(
        _SELECT + " WHERE u.owner_id = ? AND u.concat = 'final' AND u.state = 'receiving'"
        " AND EXISTS (SELECT 1 FROM json_each(u.parts) WHERE json_each.value = ?)",
        (owner_id, partial_id),
    )
    return [Upload.from_row(r) for r in rows]


async def uploads_by_ids(db: Database, public_ids: tuple[str, ...]) -> dict[str, Upload]:
    if not public_ids:
        return {}
    marks = ",".join("?" * len(public_ids))
    rows = await db.fetch_all(_SELECT + f" WHERE u.public_id IN ({marks})", public_ids)
    return {r["public_id"]: Upload.from_row(r) for r in rows}


async def expired_uploads(db: Database, now: float) -> list[Upload]:
    """Unfinished uploads past their expiry, and finished partials no final has used."""
    rows = await db.fetch_all(
        _SELECT + " WHERE u.expires_at < ? AND (u.state = 'receiving' OR (u.concat = 'partial'"
        " AND u.state = 'complete' AND NOT EXISTS (SELECT 1 FROM uploads f, json_each(f.parts)"
        " WHERE f.concat = 'final' AND f.state = 'receiving'"
        " AND json_each.value = u.public_id)))",
        (now,),
    )
    return [Upload.from_row(r) for r in rows]


async def receiving_uploads(db: Database) -> list[Upload]:
    rows = await db.fetch_all(_SELECT + " WHERE u.state = 'receiving'")
    return [Upload.from_row(r) for r in rows]


async def purge_tombstones(db: Database, before: float) -> None:
    # A complete partial waits for its final (or the sweeper), so it is never a tombstone.
    await db.write("DELETE FROM uploads WHERE completed_at < ? AND (state IN ('expired',"
                   " 'failed') OR (state = 'complete' AND concat IS NOT 'partial'))", (before,))


async def set_bytes_received(db: Database, video_id: int, count: int) -> None:
    await db.write("UPDATE videos SET bytes_received = ? WHERE id = ? AND status = 'uploading'",
                   (count, video_id))
