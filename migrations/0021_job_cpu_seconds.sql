-- CPU time (user + system) a job's worker used: what a transcode costs, whatever the load.
ALTER TABLE jobs ADD COLUMN cpu_seconds REAL;
