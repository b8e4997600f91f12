"""The Apple HLS authoring rules the project claims (tests/playback/applecheck.py), applied
to the ladders of real uploads as a player fetches them: encoded rungs of a long clip,
a copied top rung, an audio-only source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import User
from tests.pipeline.conftest import finished, submit, wait_for
from tests.playback.applecheck import RULES, check_ladder

# Presentation from 0 (not from the B-frame delay) is not claimed yet.
CLAIMED = RULES - {"from-zero"}


@pytest.mark.parametrize(("name", "copied"), [
    ("long_480p.mp4", frozenset()),
    ("remux_360p.mp4", frozenset({"360p"})),
    ("audio_only.m4a", frozenset()),
])
async def test_ladders_follow_the_authoring_rules(
    client: TestClient, owner: User, clip: Callable[[str], Path], tmp_path: Path,
    name: str, copied: frozenset[str],
) -> None:
    video_id = await submit(client, owner, clip(name))
    body = await wait_for(client, owner, video_id, finished, timeout=120)
    assert body["status"] == "ready", body
    master = str(client.make_url(body["streams"]["hls"]))
    assert await check_ladder(master, tmp_path, rules=CLAIMED, copied=copied) == []
