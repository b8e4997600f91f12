-- Resumable (tus 1.0.0) and simple uploads. The bytes live in uploads/<public_id>; the
-- offset is always the length of that file, never a column, so it cannot drift from disk.
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY,
    public_id TEXT NOT NULL UNIQUE,
    owner_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    -- NULL for partial uploads of a concatenation; SET NULL so a deleted video orphans it.
    video_id INTEGER REFERENCES videos(id) ON DELETE SET NULL,
    length INTEGER,                       -- NULL while the length is deferred
    metadata TEXT NOT NULL DEFAULT '',    -- the Upload-Metadata header as received
    concat TEXT CHECK (concat IN ('partial', 'final')),
    parts TEXT NOT NULL DEFAULT '[]',     -- JSON list of partial upload ids (final only)
    state TEXT NOT NULL DEFAULT 'receiving'
        CHECK (state IN ('receiving', 'complete', 'failed', 'expired')),
    error TEXT,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    completed_at REAL
);
CREATE INDEX uploads_owner ON uploads(owner_id, created_at);
CREATE INDEX uploads_expiry ON uploads(state, expires_at);
CREATE INDEX uploads_video ON uploads(video_id);
