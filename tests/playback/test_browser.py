"""Debian's Chromium plays the progressive MP4 of a private video in a plain `<video src>`
on another origin (signed URL, no cookies), knows its duration and seeks into it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.helpers import sign_up
from tests.playback.conftest import Tree, add_video

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--autoplay-policy=no-user-gesture-required", "--mute-audio"]

SCRIPT = """async (src) => {
  const video = document.createElement('video');
  video.muted = true;
  document.body.appendChild(video);
  const once = (name) => new Promise((ok, fail) => {
    video.addEventListener(name, ok, {once: true});
    video.addEventListener('error', () => fail(new Error('media error ' +
      (video.error && video.error.code))), {once: true});
  });
  video.src = src;
  await once('loadedmetadata');
  const duration = video.duration;
  video.currentTime = 2.5;
  await once('seeked');
  const seekedAt = video.currentTime;
  await video.play();
  await new Promise((ok) => setTimeout(ok, 700));
  video.pause();
  return {duration, seekedAt, playedTo: video.currentTime, width: video.videoWidth,
          ready: video.readyState};
}"""


async def test_chromium_plays_and_seeks_the_progressive_mp4(
    client: TestClient, hls_tree: Tree
) -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make system-deps` (Debian package chromium)")
    from playwright.async_api import async_playwright

    alice = await sign_up(client, "alice")
    vid = await add_video(client, alice, hls_tree, privacy="private")
    body = await (await client.get(f"/api/videos/{vid}", headers=alice.headers)).json()
    src = str(client.make_url(body["streams"]["progressive"][0]["url"]))
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = await browser.new_page()
            await page.set_content("<!doctype html><body></body>")
            result: dict[str, Any] = await page.evaluate(SCRIPT, src)
        finally:
            await browser.close()
    assert abs(result["duration"] - 4.0) < 0.2, result
    assert abs(result["seekedAt"] - 2.5) < 0.1, result
    assert result["playedTo"] > result["seekedAt"], result
    assert result["width"] == 640 and result["ready"] >= 2, result
