"""Sign up, upload, live processing, hls.js playback, seeking, comments, the live bell and
the resume position, in Debian's Chromium against the real server."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.ui.conftest import Server
from tests.ui.helpers import (
    PASSWORD,
    http_json,
    register,
    sign_in,
    wait_until,
)
from tests.ui.pages import Tab, unique, upload_through_page


def test_sign_up_upload_watch_seek_and_comment(
    server: Server, context: Any, clip: Path, screenshots: Path
) -> None:
    tab = Tab(context)
    page = tab.page
    username = unique("alice")
    page.goto(server.url + "/signup")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#signup-form button[type=submit]")
    page.locator("#bell").wait_for()
    assert page.get_attribute("#user-menu-button", "title") == username

    video_id = upload_through_page(page, clip, "Sunset walk")
    # Processing progress arrives per rendition, then the link to the watch page.
    page.locator("#renditions li[data-rendition]").first.wait_for(timeout=60_000)
    page.locator("#watch-link").wait_for(timeout=120_000)
    wait_until(page, "document.querySelector('.processing')?.dataset.status === 'ready'", 120)
    renditions = page.eval_on_selector_all("#renditions li",
                                           "els => els.map(e => e.dataset.rendition)")
    assert {"360p", "240p"} <= set(renditions)
    page.evaluate("document.getElementById('toasts').replaceChildren()")
    page.screenshot(path=str(screenshots / "upload.png"), full_page=True)

    page.click("#watch-link")
    page.locator("#player-video").wait_for()
    assert page.url.endswith(f"/watch/{video_id}")
    assert page.inner_text("#video-title") == "Sunset walk"
    # hls.js drives playback (Chromium's native HLS is never used) and the menu lists the
    # ladder's renditions with "Auto".
    wait_until(page, "document.querySelectorAll('#quality option').length >= 3", 30)
    assert page.get_attribute(".player", "data-engine") == "hls.js"
    options = page.eval_on_selector_all("#quality option", "els => els.map(e => e.textContent)")
    assert options[0].startswith("Auto") and "360p" in options and "240p" in options

    page.evaluate("document.querySelector('#player-video').muted = true")
    if page.evaluate("document.querySelector('#player-video').paused"):  # autoplay may be on
        page.click("#play-button")
    wait_until(page, "document.querySelector('#player-video').currentTime > 1.0", 30)
    assert page.evaluate("document.querySelector('#player-video').error") is None
    assert page.is_hidden(".player-error")

    # Seek with the seek bar: pause, click at half its width.
    page.evaluate("document.querySelector('#player-video').pause()")
    box = page.locator("#seek").bounding_box()
    assert box is not None
    duration = page.evaluate("document.querySelector('#player-video').duration")
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] / 2)
    wait_until(page, "!document.querySelector('#player-video').seeking", 30)
    position = page.evaluate("document.querySelector('#player-video').currentTime")
    assert abs(position - duration * 0.5) < 0.5, (position, duration)

    # Pick each rendition by hand: hls.js switches to it.
    for height in (360, 240):
        page.select_option("#quality", label=f"{height}p")
        page.evaluate("const v = document.querySelector('#player-video');"
                      " v.currentTime = 0; v.play()")
        wait_until(page, f"document.querySelector('#player-video').videoHeight === {height}", 30)
    page.select_option("#quality", value="-1")
    page.evaluate("document.querySelector('#player-video').pause()")
    assert page.evaluate("document.querySelector('#player-video').error") is None

    # Post a comment, then a reply to it.
    page.fill(".comment-input", "Lovely colours.")
    page.click(".comment-form button[type=submit]")
    top = page.locator("#comments > li.comment").first
    top.locator(".comment-body").get_by_text("Lovely colours.").wait_for()
    top.locator(".reply-button").click()
    page.fill(".reply-input", "Thank you!")
    top.locator(".comment-form button[type=submit]").click()
    top.locator(".replies .comment-body").get_by_text("Thank you!").wait_for()
    # The owner edits the title in place.
    page.click("#edit-video")
    page.fill("#edit-title", "Sunset walk, golden hour")
    page.click("#manage-panel button[type=submit]")
    page.locator("#video-title").get_by_text("Sunset walk, golden hour").wait_for()
    assert http_json(f"{server.url}/api/videos/{video_id}")["title"] == "Sunset walk, golden hour"
    page.evaluate("window.scrollTo(0, 0); document.getElementById('toasts').replaceChildren()")
    page.screenshot(path=str(screenshots / "watch.png"), full_page=True)

    # Both are stored: after a reload the thread shows the reply on demand.
    page.reload()
    top = page.locator("#comments > li.comment").first
    top.locator(".comment-body").get_by_text("Lovely colours.").wait_for()
    top.get_by_text("Show 1 replies").click()
    top.locator(".replies .comment-body").get_by_text("Thank you!").wait_for()

    # Storyboard previews follow the pointer over the seek bar (the sprites are made after
    # the first rendition, so this runs on the reloaded page).
    deadline = time.monotonic() + 60
    while not http_json(f"{server.url}/api/videos/{video_id}").get("storyboard"):
        assert time.monotonic() < deadline, "the video never got a storyboard"
        page.wait_for_timeout(200)
    page.reload()
    page.locator("#seek").wait_for()
    box = page.locator("#seek").bounding_box()
    assert box is not None
    deadline = time.monotonic() + 30
    sprite = "getComputedStyle(document.querySelector('.sb-image')).backgroundImage"
    while True:  # hover until the storyboard's cues have loaded and one is shown
        for fraction in (0.5, 0.3):
            page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)
        if page.is_visible(".sb-preview") and "sprite" in page.evaluate(sprite):
            break
        assert time.monotonic() < deadline, "no storyboard preview on the seek bar"
        page.wait_for_timeout(200)
    page.mouse.move(0, 0)

    page.goto(server.url + "/")
    page.locator(f".card[data-video-id='{video_id}']").first.wait_for()
    card = page.locator(f".card[data-video-id='{video_id}']").first
    assert "Sunset walk" in card.inner_text() and "0:03" in card.inner_text()
    page.screenshot(path=str(screenshots / "home.png"), full_page=True)
    assert tab.errors == []


# --- live notifications ------------------------------------------------------------


def test_bell_counts_up_live_when_a_followed_channel_publishes(
    server: Server, browser: Any, second_clip: Path
) -> None:
    owner, viewer = unique("carol"), unique("dave")
    owner_profile = register(server.url, owner)
    register(server.url, viewer)
    channel_id = owner_profile["channels"][0]["id"]
    ctx_owner = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx_viewer = browser.new_context(viewport={"width": 1280, "height": 800})
    try:
        sign_in(ctx_owner, server.url, owner)
        sign_in(ctx_viewer, server.url, viewer)
        watcher = Tab(ctx_viewer)
        page_b = watcher.page
        page_b.goto(f"{server.url}/channel/{channel_id}")
        page_b.click("#subscribe-button")
        page_b.locator("#subscribe-button[aria-pressed=true]").wait_for()
        page_b.click("a[data-nav=home]")
        page_b.locator("#bell").wait_for()
        assert page_b.is_hidden("#bell-count")
        page_b.evaluate("window.stillTheSamePage = true")

        uploader = Tab(ctx_owner)
        uploader.page.goto(server.url + "/")
        upload_through_page(uploader.page, second_clip, "Harbour evening")

        # No reload: the count arrives over the WebSocket.
        wait_until(page_b, "document.querySelector('#bell-count')?.textContent === '1'"
                           " && !document.querySelector('#bell-count').hidden", 120)
        assert page_b.evaluate("window.stillTheSamePage") is True
        page_b.click("#bell")
        page_b.locator("#notification-list li.unread").get_by_text("Harbour evening").wait_for()
        page_b.get_by_role("button", name="Mark all as read").click()
        page_b.locator("#bell-count").wait_for(state="hidden")
        assert page_b.locator("#notification-list li.unread").count() == 0
        # The subscriptions feed lists the new video.
        page_b.click("a[data-nav=feed]")
        page_b.locator(".card").get_by_text("Harbour evening").wait_for()
        assert watcher.errors == [] and uploader.errors == []
    finally:
        ctx_owner.close()
        ctx_viewer.close()


# --- resumable upload across a page reload -------------------------------------------


def test_watch_position_is_reported_and_resumed_after_a_reload(
    server: Server, context: Any, long_clip: Path
) -> None:
    name = unique("ivy")
    register(server.url, name)
    sign_in(context, server.url, name)
    tab = Tab(context)
    page = tab.page
    page.goto(server.url + "/")
    video_id = upload_through_page(page, long_clip, "Slow river")
    page.locator("#watch-link").wait_for(timeout=120_000)
    page.goto(f"{server.url}/watch/{video_id}")
    page.locator("#player-video").wait_for()
    wait_until(page, "document.querySelector('#player-video').readyState >= 1", 30)
    page.evaluate("document.querySelector('#player-video').muted = true")
    if page.evaluate("document.querySelector('#player-video').paused"):
        page.click("#play-button")
    wait_until(page, "document.querySelector('#player-video').currentTime > 0.3", 30)

    # Keyboard: the player takes focus; k toggles playback, arrows seek by 5 s.
    page.focus(".player")
    page.keyboard.press("k")
    wait_until(page, "document.querySelector('#player-video').paused", 30)
    before = page.evaluate("document.querySelector('#player-video').currentTime")
    page.keyboard.press("ArrowRight")
    wait_until(page, f"document.querySelector('#player-video').currentTime > {before + 4}", 30)
    position = page.evaluate("document.querySelector('#player-video').currentTime")
    page.keyboard.press("k")
    wait_until(page, "!document.querySelector('#player-video').paused", 30)
    page.keyboard.press("k")  # pausing reports the position to the server
    wait_until(page, "document.querySelector('#player-video').paused", 30)

    def saved() -> float:
        return float(context.request.get(f"{server.url}/api/videos/{video_id}")
                     .json().get("resume_position") or 0)

    deadline = time.monotonic() + 30
    while saved() < position - 0.5:
        assert time.monotonic() < deadline, f"position {position} never saved ({saved()})"
        page.wait_for_timeout(200)

    # With autoplay off the player can only be there by resuming, not by playing on.
    csrf = next(c["value"] for c in context.cookies() if c["name"] == "rh_csrf")
    resp = context.request.patch(f"{server.url}/api/users/me", headers={"X-CSRF-Token": csrf},
                                 data={"preferences": {"autoplay": False}})
    assert resp.status == 200, resp.text()
    page.reload()
    page.locator("#player-video").wait_for()
    wait_until(page, "document.querySelector('#player-video').readyState >= 1", 30)
    wait_until(page, f"document.querySelector('#player-video').currentTime >= {position - 1.0}",
               30)
    assert page.evaluate("document.querySelector('#player-video').paused")
    assert tab.errors == []


# --- errors the API reports reach the person -----------------------------------------
