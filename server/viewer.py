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
    token_id: int | None = None  # the API token's row, for via == "api-token"

    @property
    def credential(self) -> str | None:
        """What this viewer's access stands on, for grants that must end with it: the
        session ('s:<id>') or the API token ('t:<id>')."""
        if self.session_id is not None:
            return f"s:{self.session_id}"
        return f"t:{self.token_id}" if self.token_id is not None else None
