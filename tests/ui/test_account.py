"""Account and admin pages: API tokens, profile, sessions, disabling a user, closing
registration."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import ADMIN, Server
from tests.ui.helpers import (
    PASSWORD,
    register,
    sign_in,
)
from tests.ui.pages import Tab, unique


def test_account_tokens_and_admin_closing_registration(
    server: Server, browser: Any, context: Any
) -> None:
    other = unique("nick")
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
        signup.fill("#username", unique("mallory"))
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
