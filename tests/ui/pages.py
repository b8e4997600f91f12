"""Shared pieces of the browser tests: a watched tab and the upload form."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

CHUNK = 5 * 1024 * 1024  # the page's tus chunk size


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


def unique(name: str) -> str:
    return f"{name}{int(time.time() * 1000) % 10_000_000}"


def upload_through_page(page: Any, clip: Path, title: str) -> str:
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
