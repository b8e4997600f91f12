"""Sign in, refresh and sign out. Browsers get the same session as HttpOnly cookies."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from server import accounts, keys, sessions
from server.edge.limits import client_address
from server.errors import Forbidden, Unauthorized, problem_response
from server.identity import (
    ACCESS_COOKIE,
    CSRF_COOKIE,
    CSRF_HEADER,
    REFRESH_COOKIE,
    current_viewer,
)
from server.openapi import op, ref
from server.validation import json_body, optional_json_body

LOGIN_BODY: dict[str, Any] = {
    "type": "object",
    "required": ["username", "password"],
    "additionalProperties": False,
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
}
REFRESH_BODY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"refresh_token": {"type": "string", "minLength": 1, "maxLength": 200}},
}
TOKEN_PAIR: dict[str, Any] = {
    "type": "object",
    "required": ["access_token", "refresh_token", "token_type", "expires_in", "csrf_token"],
    "properties": {
        "access_token": {"type": "string"},
        "refresh_token": {"type": "string"},
        "token_type": {"const": "bearer"},
        "expires_in": {"type": "integer"},
        "csrf_token": {"type": "string"},
        "session_id": {"type": "string"},
    },
}

SCHEMAS = {"TokenPair": TOKEN_PAIR}
PATHS = {
    "/api/auth/login": {"post": op(
        "Sign in; returns tokens and sets the session cookies", tag="auth",
        body=LOGIN_BODY, responses={200: ref("TokenPair")}, auth="none")},
    "/api/auth/refresh": {"post": op(
        "Rotate the refresh token (body, or the refresh cookie with X-CSRF-Token)", tag="auth",
        body=REFRESH_BODY, body_required=False, responses={200: ref("TokenPair")}, auth="none")},
    "/api/auth/logout": {"post": op(
        "End the current session", tag="auth", body=REFRESH_BODY, body_required=False,
        responses={204: None}, auth="optional")},
}


def _secure(request: web.Request) -> bool:
    if request.secure:
        return True
    config = request.app[keys.CONFIG]
    return (request.remote in config.trusted_proxy_set
            and request.headers.get("X-Forwarded-Proto", "") == "https")


def _token_response(request: web.Request, issued: sessions.IssuedSession) -> web.Response:
    app = request.app
    signer = app[keys.SIGNER]
    config = app[keys.CONFIG]
    access = signer.access_token(issued.user_id, issued.session_id)
    csrf = signer.csrf_token(issued.session_id)
    response = web.json_response({
        "access_token": access,
        "refresh_token": issued.refresh_token,
        "token_type": "bearer",
        "expires_in": config.access_token_seconds,
        "csrf_token": csrf,
        "session_id": issued.session_id,
    }, headers={"Cache-Control": "no-store"})
    secure = _secure(request)
    refresh_age = config.refresh_token_days * 86400
    response.set_cookie(ACCESS_COOKIE, access, max_age=refresh_age, path="/",
                        httponly=True, samesite="Lax", secure=secure)
    response.set_cookie(REFRESH_COOKIE, issued.refresh_token, max_age=refresh_age,
                        path="/api/auth", httponly=True, samesite="Strict", secure=secure)
    # Readable by the page's script, which echoes it in X-CSRF-Token (double submit).
    response.set_cookie(CSRF_COOKIE, csrf, max_age=refresh_age, path="/",
                        samesite="Strict", secure=secure)
    return response


def _clear_cookies(response: web.StreamResponse) -> None:
    response.del_cookie(ACCESS_COOKIE, path="/")
    response.del_cookie(REFRESH_COOKIE, path="/api/auth")
    response.del_cookie(CSRF_COOKIE, path="/")


async def login(request: web.Request) -> web.Response:
    body = await json_body(request, LOGIN_BODY)
    db = request.app[keys.DB]
    user = await accounts.authenticate(db, body["username"], body["password"])
    issued = await sessions.start_session(
        db, user["id"], request.app[keys.CONFIG].refresh_token_days * 86400,
        request.headers.get("User-Agent", ""),
        client_address(request, request.app[keys.CONFIG].trusted_proxy_set),
    )
    return _token_response(request, issued)


async def _refresh_token_from(request: web.Request, body: dict[str, Any]) -> str:
    if "refresh_token" in body:
        return str(body["refresh_token"])
    cookie = request.cookies.get(REFRESH_COOKIE)
    if not cookie:
        raise Unauthorized("no refresh token in the body or cookie")
    # Signed double submit (OWASP CSRF cheat sheet): the header must be the HMAC of the
    # session the refresh cookie belongs to, which a cross-site page can neither read nor make.
    presented = request.headers.get(CSRF_HEADER, "")
    session_id = await sessions.session_of_refresh_token(request.app[keys.DB], cookie)
    if not presented or not request.app[keys.SIGNER].check_csrf(session_id or "", presented):
        raise Forbidden(f"a cookie refresh must carry the {CSRF_HEADER} header", slug="csrf")
    return cookie


async def refresh(request: web.Request) -> web.Response:
    body = await optional_json_body(request, REFRESH_BODY)
    token = await _refresh_token_from(request, body)
    config = request.app[keys.CONFIG]
    try:
        issued = await sessions.rotate(request.app[keys.DB], token,
                                       config.refresh_token_days * 86400)
    except Unauthorized as problem:
        # The session is over: the browser's cookies go with it.
        response = problem_response(problem, request.path)
        _clear_cookies(response)
        return response
    return _token_response(request, issued)


async def logout(request: web.Request) -> web.Response:
    db = request.app[keys.DB]
    viewer = current_viewer(request)
    body = await optional_json_body(request, REFRESH_BODY)
    if viewer is not None and viewer.session_id:
        await sessions.revoke_session(db, viewer.user_id, viewer.session_id)
    else:
        # An expired access token: sign out by the refresh token (body, or cookie + CSRF).
        await sessions.revoke_by_refresh_token(db, await _refresh_token_from(request, body))
    request.app[keys.PLAYBACK].videos.forget_credentials()  # the session's grants end now
    response = web.Response(status=204)
    _clear_cookies(response)
    return response
