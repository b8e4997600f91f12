"""Registration, the signed-in user's profile, sessions and API tokens, and admin actions."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import accounts, events, keys, sessions
from server.errors import BadRequest
from server.identity import require_admin, require_session, require_user
from server.openapi import ROW_ID, SINGLE_LINE, link, op, path_param, ref, with_links
from server.validation import json_body, parse_id
from server.viewer import ALL_SCOPES
from server.workers import space

USERNAME = {"type": "string", "minLength": 3, "maxLength": 32,
            "pattern": "^[A-Za-z0-9][A-Za-z0-9_.-]*$"}
DISPLAY_TEXT = {"type": "string", "minLength": 1, "maxLength": 80, "pattern": SINGLE_LINE}


def _password(min_length: int) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": 1024}


# Explicit classes rather than \s, which means more in Python's re (the validator's) than
# in ECMA-262 (what clients and generators read): no space, control character or second @.
_NOT_IN_EMAIL = ("@\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200b\\u2028\\u2029\\u202f\\u205f"
                 "\\u3000\\ufeff")
EMAIL_PATTERN = f"^[^{_NOT_IN_EMAIL}]+@[^{_NOT_IN_EMAIL}]+$"


def register_body(min_length: int) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["username", "password"],
        "additionalProperties": False,
        "properties": {
            "username": USERNAME,
            "password": _password(min_length),
            "email": {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN},
        },
    }


PREFERENCES = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "default_quality": {"type": "string", "maxLength": 16},
        "autoplay": {"type": "boolean"},
        "notifications": {
            "type": "object",
            "additionalProperties": False,
            "properties": {k: {"type": "boolean"} for k in
                           ("new_video", "video_processed", "comment", "reply", "subscriber")},
        },
    },
}
PROFILE_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "display_name": DISPLAY_TEXT,
        "bio": {"type": "string", "maxLength": 2000},
        "email": {"anyOf": [
            {"type": "string", "maxLength": 254, "pattern": EMAIL_PATTERN},
            {"type": "null"}]},
        "preferences": PREFERENCES,
    },
}
PASSWORD_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["current_password", "new_password"],
    "additionalProperties": False,
    "properties": {"current_password": {"type": "string", "maxLength": 1024},
                   "new_password": {"type": "string", "minLength": 8, "maxLength": 1024}},
}
TOKEN_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": DISPLAY_TEXT,
        "scopes": {"type": "array", "minItems": 1, "uniqueItems": True,
                   "items": {"enum": list(ALL_SCOPES)}},
    },
}
ADMIN_USER_BODY: dict[str, Any] = {
    "type": "object", "required": ["disabled"], "additionalProperties": False,
    "properties": {"disabled": {"type": "boolean"}},
}
ADMIN_SETTINGS_BODY: dict[str, Any] = {
    "type": "object", "required": ["open_registration"], "additionalProperties": False,
    "properties": {"open_registration": {"type": "boolean"}},
}
ADMIN_STORAGE: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["free_bytes", "total_bytes", "min_free_disk_bytes", "floor_met",
                 "jobs_waiting_for_space"],
    "properties": {
        "free_bytes": {"type": "integer", "description": "free on the disk holding the media"},
        "total_bytes": {"type": "integer"},
        "min_free_disk_bytes": {"type": "integer", "description":
                                "the floor: uploads and processing always leave this free"},
        "floor_met": {"type": "boolean", "description": "false: no processing starts"},
        "jobs_waiting_for_space": {"type": "integer", "description":
                                   "queued jobs whose last run stopped on a full disk"},
    },
}

CHANNEL_BRIEF = {"type": "object", "required": ["id", "handle", "display_name"],
                 "properties": {"id": {"type": "string"}, "handle": {"type": "string"},
                                "display_name": {"type": "string"}}}
USER = {
    "type": "object",
    "required": ["id", "username", "display_name", "is_admin", "channels", "preferences"],
    "properties": {
        "id": {"type": "integer"}, "username": {"type": "string"},
        "display_name": {"type": "string"}, "email": {"type": ["string", "null"]},
        "bio": {"type": "string"}, "is_admin": {"type": "boolean"},
        "disabled": {"type": "boolean"}, "created_at": {"type": "string"},
        "preferences": {"type": "object"},
        "channels": {"type": "array", "items": ref("ChannelBrief")},
    },
}
USER_SUMMARY = {"type": "object", "required": ["id", "username", "is_admin", "disabled"],
                "properties": {"id": {"type": "integer"}, "username": {"type": "string"},
                               "display_name": {"type": "string"},
                               "is_admin": {"type": "boolean"}, "disabled": {"type": "boolean"},
                               "created_at": {"type": "string"}}}
SESSION = {"type": "object", "required": ["id", "current"],
           "properties": {"id": {"type": "string"}, "user_agent": {"type": "string"},
                          "ip": {"type": "string"}, "created_at": {"type": "string"},
                          "last_used_at": {"type": "string"}, "current": {"type": "boolean"}}}
API_TOKEN = {"type": "object", "required": ["id", "name", "scopes"],
             "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                            "scopes": {"type": "array", "items": {"type": "string"}},
                            "created_at": {"type": "string"},
                            "last_used_at": {"type": ["string", "null"]},
                            "token": {"type": "string", "description": "shown once"}}}

SCHEMAS = {"User": USER, "UserSummary": USER_SUMMARY, "ChannelBrief": CHANNEL_BRIEF,
           "Session": SESSION, "ApiToken": API_TOKEN}


def _list_of(name: str) -> dict[str, Any]:
    return {"type": "object", "required": ["items"],
            "properties": {"items": {"type": "array", "items": ref(name)}}}


PATHS = {
    "/api/users": {"post": op("Register an account (the first becomes admin)", tag="users",
                              body=register_body(8), responses={201: ref("User")}, auth="none")},
    "/api/users/me": {
        "get": op("The signed-in user", tag="users", responses={200: ref("User")}),
        "patch": op("Change profile and preferences", tag="users", body=PROFILE_BODY,
                    responses={200: ref("User")}),
    },
    "/api/users/me/password": {"post": op(
        "Change the password; every other session is revoked", tag="users",
        body=PASSWORD_BODY, responses={204: None})},
    "/api/users/me/sessions": {"get": op("Open sessions", tag="users",
                                         responses={200: _list_of("Session")})},
    "/api/users/me/sessions/{session_id}": {"delete": op(
        "Revoke a session", tag="users", params=[path_param("session_id")],
        responses={204: None})},
    "/api/users/me/tokens": {
        "get": op("Personal API tokens", tag="users", responses={200: _list_of("ApiToken")}),
        "post": with_links(
            op("Create an API token (its secret is shown once)", tag="users",
               body=TOKEN_BODY, responses={201: ref("ApiToken")}),
            201, {"RevokeToken": link("/api/users/me/tokens/{token_id}", "delete",
                                      "revoke it", {"token_id": "$response.body#/id"})}),
    },
    "/api/users/me/tokens/{token_id}": {"delete": op(
        "Revoke an API token", tag="users", params=[path_param("token_id")],
        responses={204: None})},
    "/api/admin/users": {"get": op("All users (admin)", tag="admin",
                                   responses={200: _list_of("UserSummary")})},
    "/api/admin/users/{user_id}": {"patch": op(
        "Disable or enable a user (admin)", tag="admin",
        params=[path_param("user_id", "the user's id", ROW_ID)],
        body=ADMIN_USER_BODY, responses={200: ref("UserSummary")})},
    "/api/admin/settings": {
        "get": op("Instance settings (admin)", tag="admin",
                  responses={200: ADMIN_SETTINGS_BODY}),
        "patch": op("Open or close registration (admin)", tag="admin",
                    body=ADMIN_SETTINGS_BODY, responses={200: ADMIN_SETTINGS_BODY}),
    },
    "/api/admin/storage": {"get": op(
        "Free disk space and the floor kept free (admin)", tag="admin",
        responses={200: ADMIN_STORAGE})},
}


async def register(request: web.Request) -> web.Response:
    config = request.app[keys.CONFIG]
    body = await json_body(request, register_body(config.password_min_length))
    db = request.app[keys.DB]
    user_id = await accounts.register(db, body["username"], body["password"], body.get("email"),
                                      config.open_registration)
    return web.json_response(await accounts.user_json(db, user_id), status=201)


async def me(request: web.Request) -> web.Response:
    viewer = require_user(request)
    return web.json_response(await accounts.user_json(request.app[keys.DB], viewer.user_id))


async def update_me(request: web.Request) -> web.Response:
    viewer = require_user(request)
    body = await json_body(request, PROFILE_BODY)
    db = request.app[keys.DB]
    await accounts.update_profile(db, viewer.user_id, body)
    return web.json_response(await accounts.user_json(db, viewer.user_id))


async def change_password(request: web.Request) -> web.Response:
    viewer = require_session(request)
    config = request.app[keys.CONFIG]
    properties = {**PASSWORD_BODY["properties"],
                  "new_password": _password(config.password_min_length)}
    schema = {**PASSWORD_BODY, "properties": properties}
    body = await json_body(request, schema)
    await accounts.change_password(request.app[keys.DB], viewer.user_id,
                                   body["current_password"], body["new_password"],
                                   viewer.session_id)
    request.app[keys.PLAYBACK].videos.forget_credentials()  # their grants end now
    return web.Response(status=204)


async def list_sessions(request: web.Request) -> web.Response:
    viewer = require_session(request)
    items = await sessions.list_sessions(request.app[keys.DB], viewer.user_id, viewer.session_id)
    return web.json_response({"items": items})


async def revoke_session(request: web.Request) -> web.Response:
    viewer = require_session(request)
    await sessions.revoke_session(request.app[keys.DB], viewer.user_id,
                                  request.match_info["session_id"])
    request.app[keys.PLAYBACK].videos.forget_credentials()  # their grants end now
    return web.Response(status=204)


async def list_tokens(request: web.Request) -> web.Response:
    viewer = require_session(request)
    return web.json_response(
        {"items": await sessions.list_api_tokens(request.app[keys.DB], viewer.user_id)})


async def create_token(request: web.Request) -> web.Response:
    viewer = require_session(request)
    body = await json_body(request, TOKEN_BODY)
    token = await sessions.create_api_token(request.app[keys.DB], viewer.user_id, body["name"],
                                            body.get("scopes", list(ALL_SCOPES)))
    return web.json_response(token, status=201, headers={"Cache-Control": "no-store"})


async def revoke_token(request: web.Request) -> web.Response:
    viewer = require_session(request)
    await sessions.revoke_api_token(request.app[keys.DB], viewer.user_id,
                                    request.match_info["token_id"])
    request.app[keys.PLAYBACK].videos.forget_credentials()  # their grants end now
    return web.Response(status=204)


async def admin_users(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response({"items": await accounts.list_users(request.app[keys.DB])})


async def admin_update_user(request: web.Request) -> web.Response:
    viewer = require_admin(request)
    user_id = parse_id(request.match_info["user_id"])
    if user_id is None:
        raise BadRequest("the user id must be a number from 1 to 2^63 - 1")
    body = await json_body(request, ADMIN_USER_BODY)
    db = request.app[keys.DB]
    await accounts.set_disabled(db, viewer.user_id, user_id, body["disabled"])
    if body["disabled"]:
        events.account_disabled(request.app[keys.SERVICES], user_id)
    summary = next(u for u in await accounts.list_users(db) if u["id"] == user_id)
    request.app[keys.PLAYBACK].videos.forget_credentials()  # their grants end now
    return web.json_response(summary)


async def _settings_json(request: web.Request) -> dict[str, Any]:
    config = request.app[keys.CONFIG]
    is_open = await accounts.registration_open(request.app[keys.DB], config.open_registration)
    return {"open_registration": is_open}


async def admin_settings(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response(await _settings_json(request))


async def admin_storage(request: web.Request) -> web.Response:
    require_admin(request)
    return web.json_response(
        await space.storage_report(request.app[keys.CONFIG], request.app[keys.DB]))


async def admin_update_settings(request: web.Request) -> web.Response:
    require_admin(request)
    body = await json_body(request, ADMIN_SETTINGS_BODY)
    await accounts.set_registration_open(request.app[keys.DB], body["open_registration"])
    return web.json_response(await _settings_json(request))
