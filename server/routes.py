"""Every route of the server, in one table."""

from __future__ import annotations

from types import ModuleType

from aiohttp import web

from server import ui
from server.api import auth, channels, live, notifications, social, system, users, videos
from server.api import jobs as job_api
from server.api import playback as playback_api
from server.api import uploads as upload_api
from server.playback import state as playback_state

# Modules whose PATHS/SCHEMAS make up the OpenAPI document.
API_MODULES: list[ModuleType] = [system, auth, users, channels, videos]
API_MODULES.append(job_api)
API_MODULES.append(playback_api)
API_MODULES.extend([social, notifications, live])
API_MODULES.append(upload_api)


def add_routes(app: web.Application) -> None:
    playback_state.install(app)
    app.router.add_routes([
        web.get("/healthz", system.healthz),
        web.get("/metrics", system.metrics),
        web.get("/api/openapi.json", system.openapi_document),
        # Accounts and auth
        web.post("/api/auth/login", auth.login),
        web.post("/api/auth/refresh", auth.refresh),
        web.post("/api/auth/logout", auth.logout),
        web.post("/api/users", users.register),
        web.get("/api/users/me", users.me),
        web.patch("/api/users/me", users.update_me),
        web.post("/api/users/me/password", users.change_password),
        web.get("/api/users/me/sessions", users.list_sessions),
        web.delete("/api/users/me/sessions/{session_id}", users.revoke_session),
        web.get("/api/users/me/tokens", users.list_tokens),
        web.post("/api/users/me/tokens", users.create_token),
        web.delete("/api/users/me/tokens/{token_id}", users.revoke_token),
        web.get("/api/admin/users", users.admin_users),
        web.patch("/api/admin/users/{user_id}", users.admin_update_user),
        web.get("/api/admin/settings", users.admin_settings),
        web.patch("/api/admin/settings", users.admin_update_settings),
        # Channels
        web.post("/api/channels", channels.create_channel),
        web.get("/api/channels/{channel_id}", channels.get_channel),
        web.patch("/api/channels/{channel_id}", channels.update_channel),
        web.delete("/api/channels/{channel_id}", channels.delete_channel),
        web.get("/api/channels/{channel_id}/videos", channels.channel_videos),
        # Playback first: the router tries /api/videos/{video_id}/... routes in this order,
        # and segments and playlists are by far the most requested.
        # HLS (fMP4 and TS), progressive MP4, original, poster, storyboard
        web.get("/api/videos/{video_id}/hls/master.m3u8", playback_api.hls_master),
        web.get("/api/videos/{video_id}/hls/{rendition}/index.m3u8", playback_api.hls_media),
        web.get("/api/videos/{video_id}/hls/{rendition}/{segment}", playback_api.hls_segment),
        web.get("/api/videos/{video_id}/hls-ts/master.m3u8", playback_api.ts_master),
        web.get("/api/videos/{video_id}/hls-ts/{rendition}/index.m3u8", playback_api.ts_media),
        web.get("/api/videos/{video_id}/hls-ts/{rendition}/{segment}", playback_api.ts_segment),
        web.get("/api/videos/{video_id}/progressive/{file}", playback_api.progressive_mp4),
        web.get("/api/videos/{video_id}/original", playback_api.original),
        web.get("/api/videos/{video_id}/poster.jpg", playback_api.poster),
        web.get("/api/videos/{video_id}/storyboard/{file}", playback_api.storyboard),
        # Videos
        web.get("/api/videos", videos.list_videos),
        web.get("/api/videos/{video_id}", videos.get_video),
        web.patch("/api/videos/{video_id}", videos.update_video),
        web.delete("/api/videos/{video_id}", videos.delete_video),
        web.post("/api/videos/{video_id}/progress", videos.post_progress),
        web.post("/api/videos/{video_id}/cancel", job_api.cancel_processing),
        # Uploads: tus 1.0.0 and simple multipart
        web.options("/api/uploads", upload_api.tus.options),
        web.post("/api/uploads", upload_api.tus.create),
        web.options("/api/uploads/{upload_id}", upload_api.tus.options),
        web.head("/api/uploads/{upload_id}", upload_api.tus.head),
        web.patch("/api/uploads/{upload_id}", upload_api.tus.patch),
        web.delete("/api/uploads/{upload_id}", upload_api.tus.delete),
        web.post("/api/uploads/{upload_id}", upload_api.tus.method_override),
        web.post("/api/videos/upload", upload_api.multipart.upload_video),
        # Subscriptions, feed, comments, ratings, notifications, live delivery
        web.get("/api/subscriptions", social.list_subscriptions),
        web.post("/api/subscriptions/{channel_id}", social.subscribe),
        web.patch("/api/subscriptions/{channel_id}", social.update_subscription),
        web.delete("/api/subscriptions/{channel_id}", social.unsubscribe),
        web.get("/api/feed", social.feed),
        web.get("/api/videos/{video_id}/comments", social.list_comments),
        web.post("/api/videos/{video_id}/comments", social.post_comment),
        web.patch("/api/videos/{video_id}/comments/{comment_id}", social.edit_comment),
        web.delete("/api/videos/{video_id}/comments/{comment_id}", social.delete_comment),
        web.get("/api/videos/{video_id}/rating", social.get_rating),
        web.put("/api/videos/{video_id}/rating", social.put_rating),
        web.get("/api/notifications", notifications.inbox),
        web.post("/api/notifications/read-all", notifications.mark_all_read),
        web.post("/api/notifications/{notification_id}/read", notifications.mark_read),
        web.get("/api/ws", live.websocket),
        web.get("/api/events", live.event_stream),
        web.post("/api/admin/test-hooks/publish", live.test_hook_publish),
    ])
    # The web UI (not under /api): its shell, static files and vendored libraries.
    app.router.add_routes(ui.routes())
