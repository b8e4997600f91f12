"""Where things live on disk, under the data directory.

    uploads/<upload-id>            bytes of an unfinished tus upload
    media/<video-id>/              one video's files, named by media/layout.py
    media/<video-id>/g<N>/         generation N of its outputs (processed again)
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from media.layout import VideoLayout
from server.config import Config


def video_dir(config: Config, public_id: str) -> Path:
    return config.media_dir / public_id


def video_layout(config: Config, public_id: str, generation: int = 0) -> VideoLayout:
    return VideoLayout(video_dir(config, public_id), generation)


def original_path(config: Config, public_id: str) -> Path:
    return video_layout(config, public_id).original


def remove_tree(directory: Path) -> None:
    """Blocking. Renamed first, so nothing is served from a half-removed folder."""
    doomed = directory.with_name(f"{directory.name}.deleted-{secrets.token_hex(4)}")
    try:
        os.replace(directory, doomed)
    except FileNotFoundError:
        return
    shutil.rmtree(doomed, ignore_errors=True)
