"""Rate limits at the edge: per client address before identity (so floods of bad tokens
are limited too), then per signed-in user, each in the budget of the route's class."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from server.config import Config
from server.edge.classes import RouteClass
from server.errors import TooManyRequests
from server.ratelimit import RateLimiter, Verdict

NO_HEADERS: dict[str, str] = {}


def _forwarded_for(header: str) -> str:
    """The last element's `for=` of an RFC 7239 Forwarded header, without quotes, brackets
    or port (section 6: `for="[2001:db8::1]:4711"`, `for=192.0.2.60`)."""
    last = header.split(",")[-1]
    for pair in last.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.strip().lower() == "for":
            value = value.strip().strip('"')
            if value.startswith("["):
                return value[1:].partition("]")[0]
            return value.partition(":")[0] if value.count(":") == 1 else value
    return ""


def forwarded_address(peer: str, headers: Mapping[str, str], trusted: frozenset[str]) -> str:
    """The client's address: the hop the trusted proxy in front of us saw (the last of
    X-Forwarded-For, else of Forwarded); a header from anyone else is not believed."""
    if peer not in trusted:
        return peer
    xff = headers.get("X-Forwarded-For")
    if xff:
        return xff.split(",")[-1].strip() or peer
    forwarded = headers.get("Forwarded")
    return (_forwarded_for(forwarded) or peer) if forwarded else peer


def client_address(request: web.Request, trusted: frozenset[str]) -> str:
    return forwarded_address(request.remote or "", request.headers, trusted)


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
            "probe": 0,
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
