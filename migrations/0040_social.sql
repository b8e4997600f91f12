-- Comments, ratings and persisted notifications (issue 6).
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    author_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    parent_id INTEGER REFERENCES comments(id) ON DELETE CASCADE,
    body TEXT NOT NULL,
    reply_count INTEGER NOT NULL DEFAULT 0,
    deleted INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    edited_at TEXT
);
CREATE INDEX comments_thread ON comments(video_id, parent_id, id);
CREATE INDEX comments_parent ON comments(parent_id);

-- One rating per user and video; the totals live in videos.likes / videos.dislikes.
CREATE TABLE video_ratings (
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    rating INTEGER NOT NULL CHECK (rating IN (1, -1)),
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (user_id, video_id)
) WITHOUT ROWID;
CREATE INDEX video_ratings_video ON video_ratings(video_id);

-- AUTOINCREMENT: ids only ever grow, so "everything after id N" is a sound resume point.
CREATE TABLE notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN
        ('new_video', 'video_processed', 'video_failed', 'comment', 'reply', 'subscriber')),
    video_id INTEGER REFERENCES videos(id) ON DELETE CASCADE,
    data TEXT NOT NULL DEFAULT '{}',
    is_read INTEGER NOT NULL DEFAULT 0,
    read_at TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX notifications_inbox ON notifications(user_id, is_read, id);
CREATE INDEX notifications_user ON notifications(user_id, id);
CREATE INDEX notifications_video ON notifications(video_id);

-- Announcements made once per video (first time ready, first time published).
CREATE TABLE video_announcements (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (video_id, kind)
) WITHOUT ROWID;
