-- Cancelling looks up a video's queued or running job; the dispatcher counts jobs by status.
CREATE INDEX IF NOT EXISTS jobs_video_status ON jobs(video_id, status);
