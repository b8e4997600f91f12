"""The web UI in a real browser (Debian's Chromium through Playwright) against the real
server: sign up, upload with tus, live processing progress, playback with hls.js, seeking,
comments, live notifications, upload resume after a reload, account and admin pages."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.ui.conftest import ADMIN, Server
from tests.ui.helpers import (
    PASSWORD,
    http_json,
    make_large_clip,
    register,
    sign_in,
    wait_until,
)

CHUNK = 5 * 1024 * 1024


class Tab:
    """A page plus everything it complained about (script errors, CSP violations)."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.page.set_default_timeout(60_000)  # a loaded 2-core machine is slow, not wrong
        self.errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("console", self._console)

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or (message.type == "error"
                                                 and "Failed to load resource" not in text):
            self.errors.append(f"console {message.type}: {text}")


@pytest.fixture
def context(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    yield ctx
    ctx.close()


def _unique(name: str) -> str:
    return f"{name}{int(time.time() * 1000) % 10_000_000}"


def _upload_through_page(page: Any, clip: Path, title: str) -> str:
    page.click("a[data-nav=upload]")
    page.set_input_files("#file-input", str(clip))
    page.fill("#title", title)
    page.fill("#description", f"{title}: a clip made for the browser tests.")
    page.click("#upload-button")
    page.locator("#transfer[data-state=done]").wait_for(timeout=60_000)
    assert page.evaluate("document.querySelector('#upload-progress').value") == 100
    assert page.inner_text("#upload-percent") == "100%"
    video_id: str = page.get_attribute("#transfer", "data-video-id")
    assert video_id
    return video_id


# --- the shell and its static files, over plain HTTP ---------------------------------

def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_shell_static_files_and_vendor_libraries(server: Server) -> None:
    for path in ("/", "/watch/abc", "/upload", "/channel/x", "/account/tokens", "/admin"):
        status, headers, body = _get(server.url + path)
        assert status == 200, path
        assert headers["Content-Type"].startswith("text/html")
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        assert b'<script type="module" src="/static/js/app.js">' in body
        assert b"style=" not in body  # the CSP forbids inline styles
    status, headers, _ = _get(server.url + "/static/js/app.js")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    assert headers["Cache-Control"] == "no-cache" and headers.get("Etag")
    status, _, _ = _get(server.url + "/static/js/app.js", {"If-None-Match": headers["Etag"]})
    assert status == 304
    for name in ("hls.mjs", "tus.js"):
        status, headers, body = _get(f"{server.url}/static/vendor/{name}")
        assert status == 200, f"{name}: run `npm ci`"
        assert "max-age" in headers["Cache-Control"] and len(body) > 10_000
    for path in ("/static/vendor/package.json", "/static/%2e%2e/server/ui.py",
                 "/static/.hidden", "/nowhere"):
        assert _get(server.url + path)[0] == 404, path


# --- sign up, upload, processing, playback, seeking, comments --------------------------

def test_sign_up_upload_watch_seek_and_comment(
    server: Server, context: Any, clip: Path, screenshots: Path
) -> None:
    tab = Tab(context)
    page = tab.page
    username = _unique("alice")
    page.goto(server.url + "/signup")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("#signup-form button[type=submit]")
    page.locator("#bell").wait_for()
    assert page.get_attribute("#user-menu-button", "title") == username

    video_id = _upload_through_page(page, clip, "Sunset walk")
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
    owner, viewer = _unique("carol"), _unique("dave")
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
        _upload_through_page(uploader.page, second_clip, "Harbour evening")

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

def test_upload_interrupted_by_a_reload_resumes_from_the_server_offset(
    server: Server, context: Any, tmp_path: Path
) -> None:
    big = make_large_clip(tmp_path / "long_take.mp4")
    size = big.stat().st_size
    assert size > 2 * CHUNK
    name = _unique("erin")
    register(server.url, name)
    sign_in(context, server.url, name)
    tab = Tab(context)
    page = tab.page

    creations: list[str] = []
    patches: list[int] = []
    state = {"block": False, "cut_after_first": True}

    def on_upload_request(route: Any, request: Any) -> None:
        if request.method == "POST" and request.url.endswith("/api/uploads"):
            creations.append(request.url)
        if request.method != "PATCH":
            route.continue_()
            return
        patches.append(int(request.headers["upload-offset"]))
        if state["block"]:
            route.abort("connectionreset")
            return
        route.continue_()
        if state["cut_after_first"]:  # the first chunk goes through, every later one fails
            state["block"] = True
            state["cut_after_first"] = False

    page.route("**/api/uploads**", on_upload_request)
    locations: list[str] = []
    page.on("response", lambda r: locations.append(r.headers["location"])
            if r.request.method == "POST" and r.status == 201 and "location" in r.headers
            else None)

    page.goto(server.url + "/upload")
    page.set_input_files("#file-input", str(big))
    page.fill("#title", "Long take")
    page.click("#upload-button")
    deadline = time.monotonic() + 30
    while len(patches) < 2 and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert patches[:2] == [0, CHUNK], patches
    assert len(creations) == 1 and locations
    upload_url = locations[0] if locations[0].startswith("http") else server.url + locations[0]

    page.reload()  # the tab goes away in the middle of the upload
    head = context.request.head(upload_url, headers={"Tus-Resumable": "1.0.0"})
    assert head.status == 200
    assert int(head.headers["upload-offset"]) == CHUNK  # what the server really holds

    state["block"] = False
    patches.clear()
    page.locator("#pending-uploads .notice").wait_for()
    page.set_input_files("#file-input", str(big))
    page.locator("#resume-note").wait_for()
    assert page.input_value("#title") == "Long take"  # restored from the upload's metadata
    page.click("#upload-button")
    page.locator("#resumed-note").wait_for()
    wait_until(page, "document.querySelector('#transfer').dataset.state !== 'uploading'", 60)
    assert page.get_attribute("#transfer", "data-state") == "done", (
        page.inner_text("#transfer"), patches)
    assert len(creations) == 1, "the reload must resume the upload, not create another"
    assert patches[0] == CHUNK, patches
    video_id = page.get_attribute("#transfer", "data-video-id")
    video = context.request.get(f"{server.url}/api/videos/{video_id}").json()
    assert video["bytes_received"] == size or video["size"] == size
    assert tab.errors == []


# --- pause and resume within one page ------------------------------------------------

def test_pause_and_resume_buttons(server: Server, context: Any, tmp_path: Path) -> None:
    big = make_large_clip(tmp_path / "paused_take.mp4")
    name = _unique("fran")
    register(server.url, name)
    sign_in(context, server.url, name)
    tab = Tab(context)
    page = tab.page
    gate = {"held": 0}

    def slow_patches(route: Any, request: Any) -> None:
        if request.method == "PATCH" and int(request.headers["upload-offset"]) >= CHUNK:
            gate["held"] += 1
            page.wait_for_timeout(800)  # a slow link: room to press Pause mid-way
        route.continue_()

    page.route("**/api/uploads/**", slow_patches)
    page.goto(server.url + "/upload")
    page.set_input_files("#file-input", str(big))
    page.fill("#title", "Paused take")
    page.click("#upload-button")
    wait_until(page, "document.querySelector('#upload-progress').value > 0", 30)
    # Speed and time left are shown while bytes flow.
    wait_until(page, "/\\/s · .* left/.test(document.querySelector('#upload-stats').textContent)",
               30)
    page.click("#pause-button")
    page.locator("#transfer[data-state=paused]").wait_for()
    assert page.inner_text("#pause-button") == "Resume"
    assert "paused" in page.inner_text("#upload-stats")
    page.click("#pause-button")
    page.locator("#transfer[data-state=done]").wait_for(timeout=60_000)
    assert page.inner_text("#upload-percent") == "100%"
    assert tab.errors == []


# --- phones --------------------------------------------------------------------------

def test_pages_fit_a_360px_wide_phone(server: Server, browser: Any, screenshots: Path) -> None:
    videos = http_json(f"{server.url}/api/videos?sort=newest&limit=1")["items"]
    name = _unique("gil")
    register(server.url, name)
    ctx = browser.new_context(viewport={"width": 360, "height": 740}, is_mobile=True,
                              has_touch=True)
    try:
        sign_in(ctx, server.url, name)
        tab = Tab(ctx)
        paths = ["/", "/upload", "/account", "/notifications", "/signin"]
        if videos:
            paths.append(f"/watch/{videos[0]['id']}")
        for path in paths:
            tab.page.goto(server.url + path)
            tab.page.wait_for_load_state("networkidle")
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, f"{path} is {width} px wide"
            if path.startswith("/watch/"):
                tab.page.screenshot(path=str(screenshots / "watch-phone.png"), full_page=True)
        assert tab.errors == []
    finally:
        ctx.close()


# --- account and admin ---------------------------------------------------------------

def test_account_tokens_and_admin_closing_registration(
    server: Server, browser: Any, context: Any
) -> None:
    other = _unique("nick")
    register(server.url, other)
    sign_in(context, server.url, ADMIN)
    tab = Tab(context)
    page = tab.page
    page.goto(server.url + "/account/tokens")
    page.fill("#token-name", "backup script")
    page.get_by_role("button", name="Create token").click()
    assert page.locator("#new-token").inner_text().startswith("rh_")
    page.locator("#token-list li").get_by_text("backup script").wait_for()

    page.goto(server.url + "/account/profile")
    page.get_by_label("Display name").fill("The Admin")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Profile saved.").wait_for()
    assert page.get_attribute("#user-menu-button", "aria-label") == f"Account menu for {ADMIN}"

    page.goto(server.url + "/account/preferences")
    page.uncheck("#pref-autoplay")
    page.uncheck("#pref-comment")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Preferences saved.").wait_for()
    prefs = context.request.get(f"{server.url}/api/users/me").json()["preferences"]
    assert prefs["autoplay"] is False and prefs["notifications"]["comment"] is False

    page.goto(server.url + "/account/sessions")
    page.get_by_text("this browser").wait_for()

    page.goto(server.url + "/account/password")
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill("another good passphrase")
    page.get_by_role("button", name="Change password").click()
    assert page.locator(".error[role=alert]").inner_text().strip()  # the API's detail

    page.goto(server.url + "/admin")
    page.locator("#admin-users tbody tr").first.wait_for()
    # Disable and re-enable another account.
    row = page.locator("#admin-users tbody tr", has_text=other)
    row.get_by_role("button", name="Disable").click()
    row.get_by_role("cell", name="disabled", exact=True).wait_for()
    row.get_by_role("button", name="Enable").click()
    row.get_by_role("cell", name="active", exact=True).wait_for()
    page.uncheck("#open-registration")
    page.get_by_text("Registration is closed.").wait_for()
    stranger = browser.new_context()
    try:
        signup = Tab(stranger).page
        signup.goto(server.url + "/signup")
        signup.fill("#username", _unique("mallory"))
        signup.fill("#password", PASSWORD)
        signup.click("#signup-form button[type=submit]")
        # The API's problem+json detail is what the person reads.
        error = signup.locator(".error[role=alert]")
        error.wait_for()
        assert "regist" in error.inner_text().lower()
    finally:
        stranger.close()
        page.check("#open-registration")
        page.get_by_text("Registration is open.").wait_for()
    assert tab.errors == []


# --- without the npm libraries --------------------------------------------------------

def test_without_vendor_libraries_upload_is_multipart_and_playback_progressive(
    server: Server, context: Any, second_clip: Path
) -> None:
    """`npm ci` not run: the page falls back to one multipart POST and progressive MP4."""
    name = _unique("hal")
    register(server.url, name)
    sign_in(context, server.url, name)
    context.route("**/static/vendor/**", lambda route: route.fulfill(status=404, body="gone"))
    tab = Tab(context)
    page = tab.page
    multipart: list[str] = []
    page.on("request", lambda r: multipart.append(r.url)
            if r.method == "POST" and r.url.endswith("/api/videos/upload") else None)
    page.goto(server.url + "/")
    video_id = _upload_through_page(page, second_clip, "Plain old upload")
    assert len(multipart) == 1
    page.locator("#watch-link").wait_for(timeout=120_000)
    page.click("#watch-link")
    page.locator("#player-video").wait_for()
    assert page.url.endswith(f"/watch/{video_id}")
    assert page.get_attribute(".player", "data-engine") == "progressive"
    options = page.eval_on_selector_all("#quality option", "els => els.map(e => e.textContent)")
    assert "240p" in options
    page.evaluate("document.querySelector('#player-video').muted = true")
    if page.evaluate("document.querySelector('#player-video').paused"):
        page.click("#play-button")
    wait_until(page, "document.querySelector('#player-video').currentTime > 0.5", 30)
    assert page.evaluate("document.querySelector('#player-video').error") is None
    assert page.is_hidden(".player-error")

    # The owner deletes it: back to the home page, and the API no longer knows it.
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("#edit-video")
    page.get_by_role("button", name="Delete video").click()
    page.wait_for_url(server.url + "/")
    assert context.request.get(f"{server.url}/api/videos/{video_id}").status == 404
    assert tab.errors == []


# --- watching: resume position, keyboard ----------------------------------------------

def test_watch_position_is_reported_and_resumed_after_a_reload(
    server: Server, context: Any, long_clip: Path
) -> None:
    name = _unique("ivy")
    register(server.url, name)
    sign_in(context, server.url, name)
    tab = Tab(context)
    page = tab.page
    page.goto(server.url + "/")
    video_id = _upload_through_page(page, long_clip, "Slow river")
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

def test_a_file_that_is_not_video_is_refused_with_the_servers_reason(
    server: Server, context: Any, tmp_path: Path
) -> None:
    notes = tmp_path / "holiday_notes.mp4"  # the name lies; the bytes are plain text
    notes.write_text("Day one: the harbour. Day two: the hills.\n" * 2000)
    name = _unique("jo")
    register(server.url, name)
    sign_in(context, server.url, name)
    tab = Tab(context)
    page = tab.page
    page.goto(server.url + "/upload")
    # Drag and drop: a file dropped on the zone is picked like one from the dialog.
    handle = page.evaluate_handle(
        "text => { const dt = new DataTransfer();"
        " dt.items.add(new File([text], 'holiday_notes.mp4', { type: 'video/mp4' }));"
        " return dt; }", notes.read_text())
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": handle})
    assert page.inner_text("#drop-file").startswith("holiday_notes.mp4")
    assert page.input_value("#title") == "holiday notes"
    page.click("#upload-button")
    page.locator("#transfer[data-state=error]").wait_for(timeout=30_000)
    message = page.inner_text("#transfer-status .error")
    assert "video" in message.lower() or "media" in message.lower(), message
    assert "tus:" not in message  # the server's own words, not the library's


def test_upload_rides_out_a_dropped_connection(
    server: Server, context: Any, tmp_path: Path
) -> None:
    """Two PATCHes fail as if the network dropped; tus-js-client asks the server for its
    offset (HEAD) and carries on in the same page, with no second creation."""
    big = make_large_clip(tmp_path / "windy_pier.mp4")
    name = _unique("kit")
    register(server.url, name)
    sign_in(context, server.url, name)
    tab = Tab(context)
    page = tab.page
    seen: list[tuple[str, int | None]] = []

    def flaky(route: Any, request: Any) -> None:
        offset = request.headers.get("upload-offset")
        seen.append((request.method, int(offset) if offset else None))
        failures = sum(1 for method, at in seen if method == "PATCH" and at == CHUNK)
        if request.method == "PATCH" and int(offset or 0) == CHUNK and failures <= 2:
            route.abort("internetdisconnected")
            return
        route.continue_()

    page.route("**/api/uploads**", flaky)
    page.goto(server.url + "/upload")
    page.set_input_files("#file-input", str(big))
    page.fill("#title", "Windy pier")
    page.click("#upload-button")
    page.locator("#transfer[data-state=done]").wait_for(timeout=60_000)
    methods = [method for method, _ in seen]
    assert methods.count("POST") == 1
    assert [at for method, at in seen if method == "PATCH"].count(CHUNK) == 3
    assert "HEAD" in methods  # the offset was asked for, not assumed
    video_id = page.get_attribute("#transfer", "data-video-id")
    video = context.request.get(f"{server.url}/api/videos/{video_id}").json()
    assert video["bytes_received"] == big.stat().st_size
    assert tab.errors == []
