"""Domain events: the one place the rest of the server announces what happened.

Each function publishes on the bus; those that concern a person also persist a
notification first (see notifications), so a user who was away still gets it.
"""

from __future__ import annotations

from typing import Any

import aiosqlite

from server.db import Row
from server.services import Services
from server.social import notifications
from server.statuses import VideoStatus


def video_topic(public_id: str) -> str:
    return f"video:{public_id}"


def user_topic(user_id: int) -> str:
    return f"user:{user_id}"


def channel_topic(public_id: str) -> str:
    return f"channel:{public_id}"


def video_progress(services: Services, public_id: str, progress: dict[str, Any]) -> None:
    """Processing progress: ephemeral, never persisted (the video row holds the latest)."""
    services.bus.publish(video_topic(public_id), {"type": "video.progress",
                                                   "video_id": public_id, **progress})


async def video_status_changed(
    services: Services, owner_id: int, public_id: str, status: VideoStatus,
    error: str | None = None,
) -> None:
    """Called by the pipeline after it has written the new status to the video's row.

    Notifications are stored before anything is published, so a user who was away (or
    whose connection dropped) finds them in the inbox.
    """
    if status == "ready":
        await _video_ready(services, public_id)
    elif status == "failed":
        await _video_failed(services, owner_id, public_id, error)
    event = {"type": "video.status", "video_id": public_id, "status": status, "error": error}
    services.bus.publish(video_topic(public_id), event)
    services.bus.publish(user_topic(owner_id), event)


async def video_visibility_changed(services: Services, public_id: str) -> None:
    """For the video settings PATCH: a ready video made public for the first time is
    announced to its channel's subscribers then (once, as if it had just turned ready)."""
    await _video_ready(services, public_id)


def video_hidden(services: Services, public_id: str, owner_id: int, reason: str) -> None:
    """The video became private or went away: whoever followed it and may no longer see it
    gets one last event on its topic, and the topic is taken from them."""
    services.bus.end_topic(
        video_topic(public_id),
        {"type": "subscription.ended", "video_id": public_id, "reason": reason},
        keep=lambda s: s.user_id == owner_id or s.is_admin)


def account_disabled(services: Services, user_id: int) -> None:
    """Every live connection of a disabled account ends (the reason is its last word)."""
    services.bus.end_user(user_id, "this account was disabled")


async def upload_completed(services: Services, owner_id: int, public_id: str) -> None:
    event = {"type": "upload.completed", "video_id": public_id}
    services.bus.publish(video_topic(public_id), event)
    services.bus.publish(user_topic(owner_id), event)


def deliver(services: Services, user_id: int, notification: dict[str, Any] | None) -> None:
    if notification is not None:
        services.bus.publish(user_topic(user_id),
                              {"type": "notification", "notification": notification})


async def _video_row(services: Services, public_id: str) -> Row | None:
    return await services.db.fetch_one(
        "SELECT v.id, v.public_id, v.owner_id, v.channel_id, v.title, v.privacy, v.status,"
        " c.public_id AS channel_public_id, c.handle, c.display_name AS channel_name"
        " FROM videos v JOIN channels c ON c.id = v.channel_id WHERE v.public_id = ?",
        (public_id,))


async def _announce_once(conn: aiosqlite.Connection, video_id: int, kind: str) -> bool:
    cursor = await conn.execute(
        "INSERT OR IGNORE INTO video_announcements(video_id, kind) VALUES (?, ?)",
        (video_id, kind))
    return cursor.rowcount == 1


async def _video_ready(services: Services, public_id: str) -> None:
    db = services.db
    video = await _video_row(services, public_id)
    if video is None or video["status"] != "ready":
        return
    brief = {"id": video["public_id"], "title": video["title"]}
    channel = {"id": video["channel_public_id"], "handle": video["handle"],
               "display_name": video["channel_name"]}
    fanout: list[tuple[int, dict[str, Any]]] = []
    async with db.transaction() as conn:
        first_ready = await _announce_once(conn, video["id"], "processed")
        # new_video goes out once, the first time a public video is ready.
        if video["privacy"] == "public" and await _announce_once(conn, video["id"], "published"):
            await conn.execute(
                "UPDATE videos SET published_at = COALESCE(published_at,"
                " strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) WHERE id = ?", (video["id"],))
            fanout = await notifications.create_for_subscribers(
                conn, video["channel_id"], video["id"], {"video": brief, "channel": channel})
            published = True
        else:
            published = False
    if first_ready:
        deliver(services, video["owner_id"], await notifications.create(
            db, video["owner_id"], "video_processed", {"video": brief}, video["id"]))
    for user_id, notification in fanout:
        deliver(services, user_id, notification)
    if published:
        services.bus.publish(channel_topic(video["channel_public_id"]),
                              {"type": "video.published", "video": brief, "channel": channel})


async def _video_failed(services: Services, owner_id: int, public_id: str,
                        error: str | None) -> None:
    video = await _video_row(services, public_id)
    if video is None:
        return
    data = {"video": {"id": public_id, "title": video["title"]}, "error": error}
    deliver(services, owner_id, await notifications.create(
        services.db, owner_id, "video_failed", data, video["id"]))


async def comment_posted(services: Services, video: Row, comment: dict[str, Any],
                         author_id: int, parent_author_id: int | None) -> None:
    """A new comment or reply (`comment` as the API shows it): tells the parent's author
    and the video's owner (never the commenter about their own words), then announces
    it to viewers of the video."""
    author = comment["author"]["username"] if comment["author"] else None
    data = {"video": {"id": video["public_id"], "title": video["title"]},
            "comment": {"id": comment["id"], "parent_id": comment["parent_id"],
                        "excerpt": comment["body"][:140]},
            "actor": author}
    db = services.db
    if parent_author_id is not None and parent_author_id != author_id:
        deliver(services, parent_author_id,
                await notifications.create(db, parent_author_id, "reply", data, video["id"]))
    owner_id = video["owner_id"]
    if owner_id not in (author_id, parent_author_id):
        deliver(services, owner_id,
                await notifications.create(db, owner_id, "comment", data, video["id"]))
    public = {k: v for k, v in comment.items() if k not in ("can_edit", "can_delete")}
    services.bus.publish(video_topic(video["public_id"]),
                          {"type": "comment.created", "video_id": video["public_id"],
                           "comment": public})


def notifications_read(services: Services, user_id: int, unread_count: int) -> None:
    """Other tabs and devices of the same user update their unread badge."""
    services.bus.publish(user_topic(user_id), {"type": "notifications.read",
                                                "unread_count": unread_count})


async def channel_subscribed(services: Services, channel: Row, subscriber_name: str) -> None:
    owner_id = channel["owner_id"]
    data = {"channel": {"id": channel["public_id"], "handle": channel["handle"],
                        "display_name": channel["display_name"]},
            "actor": subscriber_name}
    deliver(services, owner_id, await notifications.create(services.db, owner_id, "subscriber",
                                                      data))
