"""Fixtures for upload tests: a tiny real MP4 made with PyAV, and tus helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.media.clips import Clip, make_clip


@pytest.fixture(scope="session")
def clip_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2 s 320x240 H.264/AAC MP4: real media, so completed uploads pass every check."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    return make_clip(path, Clip(320, 240, seconds=2.0, options={"crf": "18"}))


@pytest.fixture(scope="session")
def clip_bytes(clip_path: Path) -> bytes:
    return clip_path.read_bytes()
