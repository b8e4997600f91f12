"""Video listings: a user's subscription feed and a channel's page of videos.

Both sort newest first by publication time (creation time until first published) and
page with the keyset (sort time, id).
"""

from __future__ import annotations

from typing import Any

from server.db import Database, Row
from server.social.paging import PageRequest, page_json
from server.videos import video_json
from server.viewer import Viewer

_SORT = "COALESCE(v.published_at, v.created_at)"


def _keyset(page: PageRequest, params: list[Any]) -> str:
    if page.after is None:
        return ""
    params.extend(page.after)
    return f" AND ({_SORT}, v.id) < (?, ?)"


async def _page(db: Database, where: str, params: list[Any], page: PageRequest,
                viewer: Viewer | None) -> dict[str, Any]:
    where += _keyset(page, params)
    rows = await db.fetch_all(
        f"SELECT v.*, {_SORT} AS sort_at FROM videos v {where}"
        f" ORDER BY sort_at DESC, v.id DESC LIMIT ?", [*params, page.limit + 1])
    items = [await video_json(db, row, viewer) for row in rows[:page.limit]]
    return page_json(items, rows, page.limit, lambda r: [r["sort_at"], r["id"]])


async def subscription_feed(db: Database, viewer: Viewer, page: PageRequest) -> dict[str, Any]:
    return await _page(
        db,
        "JOIN subscriptions s ON s.channel_id = v.channel_id AND s.user_id = ?"
        " WHERE v.status = 'ready' AND v.privacy = 'public'",
        [viewer.user_id], page, viewer)


async def channel_videos(db: Database, channel: Row, viewer: Viewer | None,
                         page: PageRequest) -> dict[str, Any]:
    """Everyone sees the public, ready videos; the owner (and admins) see all of them."""
    owner = viewer is not None and (viewer.user_id == channel["owner_id"] or viewer.is_admin)
    where = "WHERE v.channel_id = ?"
    if not owner:
        where += " AND v.status = 'ready' AND v.privacy = 'public'"
    return await _page(db, where, [channel["id"]], page, viewer)
