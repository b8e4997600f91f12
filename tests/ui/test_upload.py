"""Uploads through the page: resume after a reload or a dropped connection, pause and
resume, refusal of a non-video file, and the fallbacks without the npm libraries."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.ui.conftest import Server
from tests.ui.helpers import (
    make_large_clip,
    register,
    sign_in,
    wait_until,
)
from tests.ui.pages import CHUNK, Tab, unique, upload_through_page


def test_upload_interrupted_by_a_reload_resumes_from_the_server_offset(
    server: Server, context: Any, tmp_path: Path
) -> None:
    big = make_large_clip(tmp_path / "long_take.mp4")
    size = big.stat().st_size
    assert size > 2 * CHUNK
    name = unique("erin")
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
    name = unique("fran")
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


def test_a_file_that_is_not_video_is_refused_with_the_servers_reason(
    server: Server, context: Any, tmp_path: Path
) -> None:
    notes = tmp_path / "holiday_notes.mp4"  # the name lies; the bytes are plain text
    notes.write_text("Day one: the harbour. Day two: the hills.\n" * 2000)
    name = unique("jo")
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
    name = unique("kit")
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


def test_without_vendor_libraries_upload_is_multipart_and_playback_progressive(
    server: Server, context: Any, second_clip: Path
) -> None:
    """`npm ci` not run: the page falls back to one multipart POST and progressive MP4."""
    name = unique("hal")
    register(server.url, name)
    sign_in(context, server.url, name)
    context.route("**/static/vendor/**", lambda route: route.fulfill(status=404, body="gone"))
    tab = Tab(context)
    page = tab.page
    multipart: list[str] = []
    page.on("request", lambda r: multipart.append(r.url)
            if r.method == "POST" and r.url.endswith("/api/videos/upload") else None)
    page.goto(server.url + "/")
    video_id = upload_through_page(page, second_clip, "Plain old upload")
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
