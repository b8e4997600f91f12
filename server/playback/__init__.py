"""Playback: HLS (fMP4 and MPEG-TS), progressive MP4, byte ranges and media access."""
