"""Rate limits at the edge: per client address before identity (so floods of bad tokens
are limited too), then per signed-in user, each in the budget of the route's class."""

from __future__ import annotations

from aiohttp import web

from server.config import Config
from server.edge.classes import RouteClass
from server.errors import TooManyRequests
from server.ratelimit import RateLimiter, Verdict

NO_HEADERS: dict[str, str] = {}


def forwarded_address(peer: str, forwarded: str | None, trusted: frozenset[str]) -> str:
    """The client's address: the last X-Forwarded-For hop, only from a trusted proxy."""
    if forwarded and peer in trusted:
        return forwarded.split(",")[-1].strip() or peer
    return peer


def client_address(request: web.Request, trusted: frozenset[str]) -> str:
    return forwarded_address(request.remote or "", request.headers.get("X-Forwarded-For"),
                             trusted)


def rate_headers(verdict: Verdict) -> dict[str, str]:
    if not verdict.limit:
        return NO_HEADERS
    return {
        "RateLimit-Limit": str(verdict.limit),
        "RateLimit-Remaining": str(verdict.remaining),
        "RateLimit-Reset": str(verdict.reset_seconds),
    }


class Limits:
    """Each class's budgets per minute, from the settings (0: no limit)."""

    def __init__(self, config: Config, limiter: RateLimiter) -> None:
        self._limiter = limiter
        self._trusted = config.trusted_proxy_set
        self._by_address: dict[RouteClass, int] = {
            "api": config.rate_limit_per_minute,
            "auth": config.auth_rate_limit_per_minute,
            "upload": config.upload_rate_limit_per_minute,
            "media": config.media_rate_limit_per_minute,
            "ui": 0,
        }
        self._by_user: dict[RouteClass, int] = {
            **self._by_address, "api": config.rate_limit_user_per_minute}

    def by_address(self, request: web.Request, kind: RouteClass) -> dict[str, str]:
        per_minute = self._by_address[kind]
        if per_minute <= 0:
            return NO_HEADERS
        address = client_address(request, self._trusted)
        return self._check(f"{kind}:ip:{address}", per_minute)

    def by_user(self, user_id: int, kind: RouteClass) -> dict[str, str]:
        # Uploads have one budget per user too, so a user cannot multiply it over addresses.
        per_minute = self._by_user[kind]
        if per_minute <= 0:
            return NO_HEADERS
        return self._check(f"{kind}:user:{user_id}", per_minute)

    def _check(self, key: str, per_minute: int) -> dict[str, str]:
        """One hit on a bucket: its RateLimit-* headers, or 429 with Retry-After."""
        verdict = self._limiter.hit(key, per_minute)
        headers = rate_headers(verdict)
        if not verdict.allowed:
            raise TooManyRequests(
                f"too many requests; try again in {verdict.reset_seconds} s",
                headers={**headers, "Retry-After": str(verdict.reset_seconds)},
            )
        return headers
