"""The owner's "Process again" in Chromium: on a failed video's processing panel, where it
takes the video through processing to playback, and in the manage menu of a ready video,
which keeps playing while its new ladder is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ui.conftest import Server
from tests.ui.helpers import PASSWORD, http_json, register, sign_in, upload, wait_until
from tests.ui.pages import Tab, unique


def test_process_again_from_the_failed_panel_and_the_manage_menu(
    server: Server, context: Any, long_clip: Path, screenshots: Path
) -> None:
    username = unique("redo")
    register(server.url, username)
    token = http_json(f"{server.url}/api/auth/login", "POST",
                      {"username": username, "password": PASSWORD})["access_token"]
    auth = {"Authorization": f"Bearer {token}"}
    video_id = upload(server.url, token, "slow_river.mp4", long_clip.read_bytes(), "video/mp4")
    # Cancelled at once (queued or running): failed, with its original kept.
    cancelled = http_json(f"{server.url}/api/videos/{video_id}/cancel", "POST", headers=auth)
    assert cancelled["status"] == "failed"

    sign_in(context, server.url, username)
    tab = Tab(context)
    page = tab.page
    page.goto(f"{server.url}/watch/{video_id}")
    page.locator("#process-again").wait_for()
    assert "Processing failed: processing was cancelled" in page.inner_text("#processing-label")
    page.screenshot(path=str(screenshots / "process-again-failed.png"), full_page=True)
    page.click("#process-again")
    # The panel follows the new run live, then the player replaces it.
    page.locator("#player-video").wait_for(timeout=120_000)
    assert page.is_hidden("#process-again") or page.locator("#process-again").count() == 0
    video = http_json(f"{server.url}/api/videos/{video_id}", headers=auth)
    assert video["status"] in ("processing", "ready") and video["streams"]["hls"].endswith("?g=1")
    wait_until(page, "document.querySelector('#player-video').readyState >= 1", 60)

    # Ready now: the manage menu processes it again while the player keeps its ladder.
    while http_json(f"{server.url}/api/videos/{video_id}", headers=auth)["progress"][
            "percent"] < 100:
        page.wait_for_timeout(200)
    page.reload()
    page.locator("#player-video").wait_for()
    page.click("#edit-video")
    page.click("#manage-process-again")
    page.locator("#reprocess-note").wait_for()
    assert "current version plays" in page.inner_text("#reprocess-note")
    assert page.is_disabled("#manage-process-again")
    page.evaluate("document.querySelector('#player-video').muted = true;"
                  " document.querySelector('#player-video').play()")
    wait_until(page, "document.querySelector('#player-video').currentTime > 0.5", 30)
    assert page.evaluate("document.querySelector('#player-video').error") is None
    while True:
        video = http_json(f"{server.url}/api/videos/{video_id}", headers=auth)
        if not video["processing_again"]:
            break
        page.wait_for_timeout(200)
    assert (video["status"], video["error"]) == ("ready", None)
    assert video["streams"]["hls"].endswith("?g=2")
    assert tab.errors == []
