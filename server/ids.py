"""Public ids: random and URL-safe, so an unlisted video cannot be found by counting."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime


def new_public_id() -> str:
    return secrets.token_urlsafe(8)  # 64 random bits, 11 characters


def utc_now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


def now() -> float:
    return time.time()
