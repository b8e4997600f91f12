"""Every route of the server, in one table, each with its class (server/edge/classes.py):
the rate-limit budget, CORS policy and token scope the edge applies to it."""

from __future__ import annotations

from types import ModuleType

from server import ui
from server.api import (
    auth,
    channels,
    live,
    notifications,
    social,
    system,
    tus_openapi,
    users,
    videos,
)
from server.api import jobs as job_api
from server.api import multipart as multipart_api
from server.api import playback as playback_api
from server.api import tus as tus_api
from server.edge.classes import Route

# Modules whose PATHS/SCHEMAS make up the OpenAPI document.
API_MODULES: tuple[ModuleType, ...] = (system, auth, users, channels, videos, job_api,
                                       playback_api, social, notifications, live, tus_openapi,
                                       multipart_api)

_V = "/api/videos/{video_id}"
# A video's public id is 11 URL-safe characters (server/ids.py): so /api/videos/upload
# is only the upload's resource, and its 405 lists only the upload's methods.
_VIDEO = "/api/videos/{video_id:[A-Za-z0-9_-]{11}}"
# Playback first: the router tries /api/videos/{video_id}/... routes in this order, and
# segments and playlists are by far the most requested. Each media path also answers
# OPTIONS, so players on other origins can send Range and Authorization (CORS preflight).
MEDIA_PATHS = (
    (f"{_V}/hls/master.m3u8", playback_api.hls_master),
    (f"{_V}/hls/{{rendition}}/index.m3u8", playback_api.hls_media),
    (f"{_V}/hls/{{rendition}}/iframes.m3u8", playback_api.hls_iframes),
    (f"{_V}/hls/{{rendition}}/{{segment}}", playback_api.hls_segment),
    (f"{_V}/hls-ts/master.m3u8", playback_api.ts_master),
    (f"{_V}/hls-ts/{{rendition}}/index.m3u8", playback_api.ts_media),
    (f"{_V}/hls-ts/{{rendition}}/{{segment}}", playback_api.ts_segment),
    (f"{_V}/progressive/{{file}}", playback_api.progressive_mp4),
    (f"{_V}/original", playback_api.original),
    (f"{_V}/poster.jpg", playback_api.poster),
    (f"{_V}/storyboard/{{file}}", playback_api.storyboard),
)

# tus 1.0.0: Tus-Resumable on every answer (the edge's 401 and 429 too).
TUS = (("Tus-Resumable", tus_api.TUS_VERSION),)

ROUTES: tuple[Route, ...] = (
    *(Route("GET", path, handler, "media") for path, handler in MEDIA_PATHS),
    *(Route("OPTIONS", path, playback_api.options, "media") for path, _ in MEDIA_PATHS),
    # Health and metrics spend no budget (issue 22: a health check answered 429).
    Route("GET", "/healthz", system.healthz, "probe"),
    # A scraper's token is not a session's: the handler checks it (metrics_token).
    Route("GET", "/metrics", system.metrics, "probe", stale_token_ok=True),
    Route("GET", "/api/openapi.json", system.openapi_document),
    # Accounts and auth
    Route("POST", "/api/auth/login", auth.login, "auth"),
    Route("POST", "/api/auth/refresh", auth.refresh, "auth"),
    Route("POST", "/api/auth/logout", auth.logout, stale_token_ok=True),
    Route("POST", "/api/users", users.register, "auth"),
    Route("GET", "/api/users/me", users.me),
    Route("PATCH", "/api/users/me", users.update_me),
    Route("POST", "/api/users/me/password", users.change_password),
    Route("GET", "/api/users/me/sessions", users.list_sessions),
    Route("DELETE", "/api/users/me/sessions/{session_id}", users.revoke_session),
    Route("GET", "/api/users/me/tokens", users.list_tokens),
    Route("POST", "/api/users/me/tokens", users.create_token),
    Route("DELETE", "/api/users/me/tokens/{token_id}", users.revoke_token),
    Route("GET", "/api/admin/users", users.admin_users),
    Route("PATCH", "/api/admin/users/{user_id}", users.admin_update_user),
    Route("GET", "/api/admin/settings", users.admin_settings),
    Route("PATCH", "/api/admin/settings", users.admin_update_settings),
    Route("GET", "/api/admin/storage", users.admin_storage),
    # Channels
    Route("POST", "/api/channels", channels.create_channel),
    Route("GET", "/api/channels/{channel_id}", channels.get_channel),
    Route("PATCH", "/api/channels/{channel_id}", channels.update_channel),
    Route("DELETE", "/api/channels/{channel_id}", channels.delete_channel),
    Route("GET", "/api/channels/{channel_id}/videos", channels.channel_videos),
    # Videos
    Route("GET", "/api/videos", videos.list_videos),
    Route("GET", _VIDEO, videos.get_video),
    Route("PATCH", _VIDEO, videos.update_video),
    Route("DELETE", _VIDEO, videos.delete_video),
    Route("POST", f"{_V}/progress", videos.post_progress),
    Route("POST", f"{_V}/cancel", job_api.cancel_processing),
    Route("POST", f"{_V}/reprocess", job_api.reprocess),
    Route("POST", "/api/admin/reprocess-failed", job_api.reprocess_failed),
    # Uploads: tus 1.0.0, each URL's methods through one dispatcher that also honours
    # X-HTTP-Method-Override (a GET answers HEAD too), and simple multipart
    *(Route(method, "/api/uploads", tus_api.creation_url, "upload", headers=TUS)
      for method in ("OPTIONS", "POST", "GET")),
    *(Route(method, "/api/uploads/{upload_id}", tus_api.upload_url, "upload", headers=TUS)
      for method in ("OPTIONS", "GET", "PATCH", "DELETE", "POST")),
    Route("OPTIONS", "/api/videos/upload", multipart_api.options, "upload"),
    Route("POST", "/api/videos/upload", multipart_api.upload_video, "upload"),
    # Subscriptions, feed, comments, ratings, notifications, live delivery
    Route("GET", "/api/subscriptions", social.list_subscriptions),
    Route("POST", "/api/subscriptions/{channel_id}", social.subscribe),
    Route("PATCH", "/api/subscriptions/{channel_id}", social.update_subscription),
    Route("DELETE", "/api/subscriptions/{channel_id}", social.unsubscribe),
    Route("GET", "/api/feed", social.feed),
    Route("GET", f"{_V}/comments", social.list_comments),
    Route("POST", f"{_V}/comments", social.post_comment),
    Route("PATCH", f"{_V}/comments/{{comment_id}}", social.edit_comment),
    Route("DELETE", f"{_V}/comments/{{comment_id}}", social.delete_comment),
    Route("GET", f"{_V}/rating", social.get_rating),
    Route("PUT", f"{_V}/rating", social.put_rating),
    Route("GET", "/api/notifications", notifications.inbox),
    Route("POST", "/api/notifications/read-all", notifications.mark_all_read),
    Route("POST", "/api/notifications/{notification_id}/read", notifications.mark_read),
    Route("GET", "/api/ws", live.websocket),
    Route("GET", "/api/events", live.event_stream),
    Route("POST", "/api/admin/test-hooks/publish", live.test_hook_publish),
    # The web UI (not under /api): its shell, static files and vendored libraries.
    *(Route("GET", path, handler, "ui") for path, handler in ui.ROUTES),
)
