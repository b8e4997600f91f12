-- Processing a video again. Each run writes one generation of the outputs (0: the first,
-- in the video's directory; N: its g<N>/ folder). `videos.generation` is the one served;
-- `jobs.generation` the one a job writes. A job that writes a newer generation than the
-- one served rebuilds a ready video: it keeps playing its old ladder until the new one is
-- complete, then the video switches to it in one transaction.
ALTER TABLE videos ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;

-- A generation no longer served, removed once viewers that began with it have had time to
-- finish (a player keeps the playlists it loaded for the whole film).
CREATE TABLE retired_generations (
    video_id INTEGER NOT NULL REFERENCES videos(id) ON DELETE CASCADE,
    generation INTEGER NOT NULL,
    remove_after REAL NOT NULL,
    PRIMARY KEY (video_id, generation)
);
CREATE INDEX retired_generations_due ON retired_generations(remove_after);
