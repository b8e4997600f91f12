-- A fair queue: jobs are taken round-robin by owner, at most `jobs_running_per_user` of
-- one owner at a time. An owner's jobs past `jobs_queued_per_user` are held: their
-- uploads succeeded, and they join the queue as the owner's earlier jobs leave it.
ALTER TABLE jobs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_queued ON jobs(status, held, run_after);
