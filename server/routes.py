"""Every route of the server, in one table."""

from __future__ import annotations

from types import ModuleType

from aiohttp import web

from server.api import auth, channels, system, users, videos
from server.api import jobs as job_api

# Modules whose PATHS/SCHEMAS make up the OpenAPI document.
API_MODULES: list[ModuleType] = [system, auth, users, channels, videos]
API_MODULES.append(job_api)


def add_routes(app: web.Application) -> None:
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
        # Videos
        web.get("/api/videos/{video_id}", videos.get_video),
        web.post("/api/videos/{video_id}/cancel", job_api.cancel_processing),
    ])
