-- Resume positions and view counting (playback).
-- viewer is 'u:<user id>' for signed-in viewers, 'anon:<cookie id>' for anonymous ones.
CREATE TABLE watch_positions (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    viewer TEXT NOT NULL,
    position REAL NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (video_id, viewer)
);

-- One row per viewer and video: the current counting window (an hour), the seconds watched
-- in it, and whether it already produced a view.
CREATE TABLE view_windows (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    viewer TEXT NOT NULL,
    window_start REAL NOT NULL,
    watched REAL NOT NULL DEFAULT 0,
    counted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (video_id, viewer)
);
CREATE INDEX videos_views ON videos(status, privacy, views);
