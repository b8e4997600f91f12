-- Times a job was stopped by something other than itself: the server stopping under it
-- (SIGTERM, kill -9, a power cut) or the disk filling up. They use none of its attempts,
-- which count only the job's own failures; many of them in a row end the job.
ALTER TABLE jobs ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
