"""Pure media code: probe, ladder, transcode, HLS writing, thumbnails.

Never imports the web server: takes paths and settings, returns dataclasses.
"""
