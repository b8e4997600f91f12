"""Security headers on every response, as an `on_response_prepare` hook, so responses a
handler prepares itself (files, SSE, WebSocket) and aiohttp's own errors get them too."""

from __future__ import annotations

from aiohttp import web

UI_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob:",
    "media-src 'self' blob:",
    "worker-src 'self' blob:",
    # 'self' matches same-origin ws:/wss: too (CSP Level 3, section 6.7.2.9).
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
# Everything that is not the UI (the API, media, uploaded files, metrics) is data, never a
# page: opened directly, it runs no script, loads nothing and has a unique origin.
DATA_SECURITY_POLICY = "sandbox; default-src 'none'"
DATA_PREFIXES = ("/api/", "/healthz", "/metrics")
SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "strict-origin-when-cross-origin"),
    ("X-Frame-Options", "DENY"),
)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    headers = response.headers
    for name, value in SECURITY_HEADERS:
        headers.setdefault(name, value)
    data = request.path.startswith(DATA_PREFIXES)
    headers["Content-Security-Policy"] = DATA_SECURITY_POLICY if data else UI_SECURITY_POLICY
    if request.secure:
        # RFC 6797: only ever sent over HTTPS.
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
