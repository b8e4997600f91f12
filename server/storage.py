"""Where things live on disk, under the data directory.

    uploads/<upload-id>            bytes of an unfinished tus upload
    media/<video-id>/original      the uploaded file, once complete
    media/<video-id>/hls/          master.m3u8 and one folder per rendition
    media/<video-id>/poster.jpg    the poster frame
    media/<video-id>/storyboard/   sprite sheets and storyboard.vtt
"""

from __future__ import annotations

import os
import secrets
import shutil
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


def remove_tree(directory: Path) -> None:
    """Blocking. Renamed first, so nothing is served from a half-removed folder."""
    doomed = directory.with_name(f"{directory.name}.deleted-{secrets.token_hex(4)}")
    try:
        os.replace(directory, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)
