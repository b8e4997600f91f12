"""Where things live on disk, under the data directory.

    uploads/<upload-id>            bytes of an unfinished tus upload
    media/<video-id>/original      the uploaded file, once complete
    media/<video-id>/hls/          master.m3u8 and one folder per rendition
    media/<video-id>/poster.jpg    the poster frame
    media/<video-id>/storyboard/   sprite sheets and storyboard.vtt
"""

from __future__ import annotations

from pathlib import Path

from server.config import Config


def video_dir(config: Config, public_id: str) -> Path:
    return config.media_dir / public_id


def original_path(config: Config, public_id: str) -> Path:
    return video_dir(config, public_id) / "original"


def hls_dir(config: Config, public_id: str) -> Path:
    return video_dir(config, public_id) / "hls"


def poster_path(config: Config, public_id: str) -> Path:
    return video_dir(config, public_id) / "poster.jpg"


def storyboard_dir(config: Config, public_id: str) -> Path:
    return video_dir(config, public_id) / "storyboard"
