"""The Apple HLS authoring rules the project claims (tests/playback/applecheck.py), applied
to the ladders of real uploads as a player fetches them: encoded rungs of a long clip
(x264 with B-frames, whose reorder delay the edit list hides, and without), a copied top
rung, an audio-only source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from server.app import create_app
from tests.helpers import sign_up
from tests.pipeline.conftest import finished, pipeline_config, submit, wait_for
from tests.playback.applecheck import RULES, check_ladder


@pytest.mark.parametrize(("name", "preset", "copied"), [
    ("long_480p.mp4", "veryfast", frozenset()),
    ("long_480p.mp4", "ultrafast", frozenset()),
    ("remux_360p.mp4", "ultrafast", frozenset({"360p"})),
    ("audio_only.m4a", "ultrafast", frozenset()),
])
async def test_ladders_follow_the_authoring_rules(
    aiohttp_client: Any, clip: Callable[[str], Path], tmp_path: Path,
    name: str, preset: str, copied: frozenset[str],
) -> None:
    client = await aiohttp_client(create_app(pipeline_config(tmp_path / "data",
                                                             x264_preset=preset)))
    owner = await sign_up(client, "owner")
    video_id = await submit(client, owner, clip(name))
    body = await wait_for(client, owner, video_id, finished, timeout=120)
    assert body["status"] == "ready", body
    master = str(client.make_url(body["streams"]["hls"]))
    assert await check_ladder(master, tmp_path, rules=RULES, copied=copied,
                              has_audio=True) == []
