"""Playback fixtures: real HLS output made once per session by `media.pipeline.process`
(the project's own pipeline, on a 4 s PyAV clip: 360p and 240p rungs, an audio
rendition, 1 s segments, poster and storyboard), copied into each test's data directory
with matching `videos` and `renditions` rows, as the transcoding worker leaves them."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from media.ladder import LadderSettings
from media.pipeline import ProcessResult, ProcessSettings, process
from server import keys, storage, videos
from tests.helpers import User, sign_up
from tests.media.clips import Clip, make_clip


@dataclass(frozen=True)
class Tree:
    root: Path  # holds hls/, poster.jpg, storyboard/
    source: Path
    result: ProcessResult


@pytest.fixture(scope="session")
def hls_tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    base = tmp_path_factory.mktemp("playback")
    source = make_clip(base / "source.mp4", Clip(640, 360, seconds=4.0, gop=30,
                                                  options={"crf": "30"}))
    settings = ProcessSettings(ladder=LadderSettings(enabled=frozenset({360, 240}),
                                                     segment_target=1.0))
    result = process(source, base / "out", settings)
    return Tree(base / "out", source, result)


async def add_video(client: TestClient, owner: User, tree: Tree, privacy: str = "public",
                    status: str = "ready", **fields: Any) -> str:
    """A processed video owned by `owner`, its files in place; returns its public id."""
    db = client.app[keys.DB]
    channel = await db.fetch_value("SELECT id FROM channels WHERE public_id = ?",
                                   (owner.channel_id,))
    row = await videos.create_video(
        db, owner.id, channel, f"clip {privacy}", privacy=privacy, status=status,
        size=tree.source.stat().st_size, original_filename="holiday.mp4",
        original_mime="video/mp4")
    public_id = row["public_id"]
    target = storage.video_dir(client.app[keys.CONFIG], public_id)
    shutil.copytree(tree.root, target)
    shutil.copy(tree.source, target / "original")
    probe = tree.result.probe
    await db.write(
        "UPDATE videos SET duration = ?, width = ?, height = ? WHERE id = ?",
        (probe.duration, 640, 360, row["id"]))
    await db.write_many(
        "INSERT INTO renditions(video_id, name, kind, width, height, frame_rate, codecs,"
        " bandwidth, average_bandwidth, segments, duration) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        [(row["id"], r.name, r.kind, r.width, r.height, r.frame_rate, r.codecs, r.bandwidth,
          r.average_bandwidth, r.segments, r.duration) for r in tree.result.renditions])
    for key, value in fields.items():
        await db.write(f"UPDATE videos SET {key} = ? WHERE id = ?", (value, row["id"]))
    return str(public_id)


async def make_admin(client: TestClient, name: str) -> User:
    user = await sign_up(client, name)
    await client.app[keys.DB].write("UPDATE users SET is_admin = 1 WHERE id = ?", (user.id,))
    return user
