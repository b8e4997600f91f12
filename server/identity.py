"""Who is asking: resolves Bearer tokens, API tokens and session cookies to a Viewer.

Browsers authenticate with HttpOnly cookies; unsafe methods authenticated that way must
carry the session's CSRF token in `X-CSRF-Token` (double submit, bound to the session).
"""

from __future__ import annotations

from aiohttp import web

from server import keys
from server.edge.classes import route_of
from server.errors import Forbidden, Unauthorized
from server.tokens import API_TOKEN_PREFIX, token_hash
from server.viewer import Viewer

ACCESS_COOKIE = "rh_access"
REFRESH_COOKIE = "rh_refresh"
CSRF_COOKIE = "rh_csrf"
ANON_COOKIE = "rh_viewer"  # a random id for an anonymous viewer's resume point and views
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


VIEWER: web.RequestKey[Viewer | None] = web.RequestKey("viewer")


async def viewer_from_access_token(request: web.Request, token: str, via: str) -> Viewer | None:
    claims = request.app[keys.SIGNER].read_access_token(token)
    if claims is None:
        return None
    row = await request.app[keys.DB].fetch_one(
        "SELECT u.id, u.username, u.is_admin FROM sessions s JOIN users u ON u.id = s.user_id"
        " WHERE s.public_id = ? AND s.user_id = ? AND s.revoked = 0 AND u.disabled = 0",
        (claims.session_id, claims.user_id),
    )
    if row is None:
        return None
    return Viewer(row["id"], row["username"], bool(row["is_admin"]), claims.session_id, via)


async def viewer_from_api_token(request: web.Request, token: str) -> Viewer | None:
    db = request.app[keys.DB]
    row = await db.fetch_one(
        "SELECT t.id AS token_id, t.scopes, u.id, u.username, u.is_admin,"
        " t.last_used_at IS NULL OR t.last_used_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now',"
        " '-60 seconds') AS stale FROM api_tokens t"
        " JOIN users u ON u.id = t.user_id WHERE t.token_hash = ? AND u.disabled = 0",
        (token_hash(token),),
    )
    if row is None:
        return None
    if row["stale"]:
        # Recorded at most once a minute, so a busy script (a TV fetching segments) does not
        # turn every read into a write.
        await db.write(
            "UPDATE api_tokens SET last_used_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
            " WHERE id = ?",
            (row["token_id"],),
        )
    scopes = frozenset(s for s in row["scopes"].split(",") if s)
    return Viewer(row["id"], row["username"], bool(row["is_admin"]), None, "api-token", scopes,
                  row["token_id"])


async def viewer_from_token(request: web.Request, token: str) -> Viewer:
    """A Bearer token: an API token or an access token; 401 unless it is valid."""
    if token.startswith(API_TOKEN_PREFIX):
        viewer = await viewer_from_api_token(request, token)
    else:
        viewer = await viewer_from_access_token(request, token, "bearer")
    if viewer is None:
        raise Unauthorized("the token is invalid, expired or revoked")
    return viewer


async def resolve_viewer(request: web.Request) -> Viewer | None:
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized("the Authorization header must be 'Bearer <token>'")
        return await viewer_from_token(request, token)
    cookie = request.cookies.get(ACCESS_COOKIE)
    if cookie:
        return await viewer_from_access_token(request, cookie, "cookie")
    return None


def check_csrf(request: web.Request, viewer: Viewer) -> None:
    if request.method in SAFE_METHODS or viewer.via != "cookie" or viewer.session_id is None:
        return
    presented = request.headers.get(CSRF_HEADER, "")
    if not presented or not request.app[keys.SIGNER].check_csrf(viewer.session_id, presented):
        raise Forbidden(
            f"a request authenticated by cookie must carry the {CSRF_HEADER} header",
            slug="csrf",
        )


def required_scope(request: web.Request) -> str:
    if route_of(request).kind == "upload":
        return "upload"  # every tus request, HEAD included, belongs to uploading
    if request.method in SAFE_METHODS:
        return "read"
    return "write"


def check_scope(request: web.Request, viewer: Viewer) -> None:
    """Checked for every request, so no handler can forget an API token's scopes."""
    scope = required_scope(request)
    if scope not in viewer.scopes:
        raise Forbidden(f"this API token lacks the '{scope}' scope", slug="scope")


def current_viewer(request: web.Request) -> Viewer | None:
    return request.get(VIEWER)


def require_user(request: web.Request) -> Viewer:
    viewer = current_viewer(request)
    if viewer is None:
        raise Unauthorized()
    check_scope(request, viewer)
    return viewer


def require_session(request: web.Request) -> Viewer:
    """Account management (password, tokens, sessions) needs a real login, not an API token."""
    viewer = require_user(request)
    if viewer.session_id is None:
        raise Forbidden("this needs a signed-in session, not an API token", slug="scope")
    return viewer


def require_admin(request: web.Request) -> Viewer:
    viewer = require_user(request)
    if not viewer.is_admin:
        raise Forbidden("only an administrator may do this")
    return viewer


def viewer_key(request: web.Request, viewer: Viewer | None) -> str:
    """'u:<user id>', or 'anon:<cookie id>' for an anonymous viewer ('anon' without one)."""
    if viewer is not None:
        return f"u:{viewer.user_id}"
    anon = request.cookies.get(ANON_COOKIE, "")
    return f"anon:{anon}" if anon else "anon"
