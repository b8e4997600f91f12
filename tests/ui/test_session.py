"""The page keeps working when its short-lived access token expires: a 401 makes it rotate
the refresh cookie (with the CSRF header) and retry once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.ui.conftest import Server
from tests.ui.helpers import PASSWORD


@pytest.fixture(scope="module")
def short_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("ui-short") / "data", "--access-token-seconds", "2")
    try:
        yield running
    finally:
        running.stop()


def test_expired_access_token_is_refreshed_and_the_request_retried(
    short_server: Server, browser: Any
) -> None:
    context = browser.new_context()
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        refreshes: list[int] = []
        page.on("response", lambda r: refreshes.append(r.status)
                if r.url.endswith("/api/auth/refresh") else None)
        page.goto(short_server.url + "/signup")
        page.fill("#username", "quinn")
        page.fill("#password", PASSWORD)
        page.click("#signup-form button[type=submit]")
        page.locator("#bell").wait_for()
        page.wait_for_timeout(3000)  # the access token is now expired

        page.goto(short_server.url + "/account/profile")  # a reload: GET /api/users/me
        page.get_by_label("Display name").fill("Quinn Q")
        page.get_by_role("button", name="Save").click()  # PATCH with the CSRF header
        page.get_by_text("Profile saved.").wait_for()
        assert refreshes and all(status == 200 for status in refreshes)
        assert page.locator("#user-menu-button").inner_text() == "Q"
        assert errors == []
    finally:
        context.close()
