-- The original's media type used to be the one the uploader declared; it is now set from
-- the probe (an allowlist of video/* and audio/* types). Forget every declared value: until
-- a video is probed again its original is served as application/octet-stream.
UPDATE videos SET original_mime = '';
