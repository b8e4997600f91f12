"""Who is asking, once the edge has resolved their credentials (server/identity.py)."""

from __future__ import annotations

from dataclasses import dataclass

ALL_SCOPES = ("read", "upload", "write")


@dataclass(frozen=True)
class Viewer:
    user_id: int
    username: str
    is_admin: bool
    session_id: str | None
    via: str  # "bearer", "cookie" or "api-token"
    scopes: frozenset[str] = frozenset(ALL_SCOPES)
