"""Rate limits, security headers, /healthz and /metrics."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server import keys
from server.app import create_app
from server.config import Config
from tests.conftest import METRICS, make_config
from tests.helpers import PASSWORD, check_openapi, sign_up

# --- rate limits ----------------------------------------------------------------------------


async def limited_client(aiohttp_client: AiohttpClient, tmp_path: Path,
                         **limits: int) -> TestClient:
    return await aiohttp_client(create_app(make_config(tmp_path, **limits)))


def assert_rate_limited(resp: Any, limit: int) -> None:
    assert resp.status == 429
    assert resp.content_type == "application/problem+json"
    retry_after = int(resp.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert resp.headers["RateLimit-Limit"] == str(limit)
    assert resp.headers["RateLimit-Remaining"] == "0"
    assert int(resp.headers["RateLimit-Reset"]) >= 1


async def test_per_address_limit(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await limited_client(aiohttp_client, tmp_path, rate_limit_per_minute=5)
    remaining = []
    for _ in range(5):
        resp = await client.get("/api/openapi.json")
        assert resp.status == 200
        assert resp.headers["RateLimit-Limit"] == "5"
        remaining.append(int(resp.headers["RateLimit-Remaining"]))
    assert remaining == [4, 3, 2, 1, 0]
    resp = await client.get("/api/openapi.json")
    assert_rate_limited(resp, 5)
    problem = await check_openapi(client.app[keys.OPENAPI], resp)
    assert problem["status"] == 429 and problem["type"].endswith("/rate-limited")
    # Every endpoint counts, errors and unknown routes included; the probes do not (issue 22).
    assert (await client.get("/api/nope")).status == 429
    assert (await client.get("/healthz")).status == 200


async def test_login_and_registration_are_stricter(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await limited_client(aiohttp_client, tmp_path, rate_limit_per_minute=1000,
                                  auth_rate_limit_per_minute=3)
    assert (await client.post("/api/users",
                              json={"username": "alice", "password": PASSWORD})).status == 201
    for _ in range(2):
        resp = await client.post("/api/auth/login",
                                 json={"username": "alice", "password": "wrong guess"})
        assert resp.status == 401
        assert resp.headers["RateLimit-Limit"] == "3"
    # The fourth attempt, even with the right password, waits.
    resp = await client.post("/api/auth/login", json={"username": "alice", "password": PASSWORD})
    assert_rate_limited(resp, 3)
    resp = await client.post("/api/users", json={"username": "bob", "password": PASSWORD})
    assert_rate_limited(resp, 3)
    # Other endpoints have their own, larger budget.
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200 and resp.headers["RateLimit-Limit"] == "1000"


def test_default_auth_limit_is_stricter() -> None:
    defaults = Config()
    assert 0 < defaults.auth_rate_limit_per_minute < defaults.rate_limit_per_minute / 10


async def test_per_user_limit(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await limited_client(aiohttp_client, tmp_path, rate_limit_per_minute=1000,
                                  rate_limit_user_per_minute=3)
    alice = await sign_up(client, "alice")
    bob = await sign_up(client, "bob")
    for _ in range(3):
        assert (await client.get("/api/users/me", headers=alice.headers)).status == 200
    resp = await client.get("/api/users/me", headers=alice.headers)
    assert_rate_limited(resp, 3)
    # Same address, another user: not limited, so the limit is per user.
    assert (await client.get("/api/users/me", headers=bob.headers)).status == 200
    assert (await client.get("/api/openapi.json")).status == 200


async def test_limits_are_off_at_zero(aiohttp_client: AiohttpClient, tmp_path: Path) -> None:
    client = await limited_client(aiohttp_client, tmp_path, rate_limit_per_minute=0)
    for _ in range(20):
        resp = await client.get("/healthz")
        assert resp.status == 200
    assert "RateLimit-Limit" not in resp.headers


# --- security headers ---------------------------------------------------------------------


async def test_security_headers_on_every_response(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await limited_client(aiohttp_client, tmp_path, rate_limit_per_minute=12)
    alice = await sign_up(client, "alice")
    requests = [
        ("GET", "/healthz", None, 200),
        ("GET", "/metrics", None, 404),
        ("GET", "/metrics", METRICS, 200),
        ("GET", "/api/openapi.json", None, 200),
        ("GET", "/api/users/me", alice.headers, 200),
        ("GET", "/api/users/me", None, 401),
        ("POST", "/api/users", None, 415),
        ("GET", "/api/nope", None, 404),
        ("PUT", "/api/users/me", None, 405),
        ("GET", "/not-an-api-path", None, 404),
        ("DELETE", f"/api/channels/{alice.channel_id}", alice.headers, 409),
    ]
    seen = []
    for method, path, headers, status in requests:
        resp = await client.request(method, path, headers=headers)
        assert resp.status == status, (method, path)
        seen.append(resp)
    for _ in range(20):
        resp = await client.get("/api/openapi.json")
        if resp.status == 429:
            break
    assert resp.status == 429  # the edge's own refusal carries them too
    seen.append(resp)
    for resp in seen:
        where = f"{resp.method} {resp.url.path} {resp.status}"
        csp = resp.headers.get("Content-Security-Policy", "")
        if resp.url.path == "/not-an-api-path":  # the UI's pages
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp, where
            assert "object-src 'none'" in csp and "connect-src 'self';" in csp, where
        else:  # data: never a page, whatever it holds
            assert csp == "sandbox; default-src 'none'", where
        assert resp.headers.get("X-Content-Type-Options") == "nosniff", where
        assert resp.headers.get("Referrer-Policy") == "strict-origin-when-cross-origin", where
        assert "Strict-Transport-Security" not in resp.headers  # plain HTTP


# --- health and metrics -------------------------------------------------------------------


async def test_healthz(client: TestClient) -> None:
    resp = await client.get("/healthz")
    assert resp.status == 200
    assert await resp.json() == {"status": "ok"}


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


async def test_metrics_in_prometheus_text_format(client: TestClient) -> None:
    alice = await sign_up(client, "alice")
    for _ in range(3):
        assert (await client.get("/api/users/me", headers=alice.headers)).status == 200
    await client.get(f"/api/channels/{alice.channel_id}")
    await client.get("/api/channels/no-such-channel")
    await client.get("/api/nope")

    resp = await client.get("/metrics", headers=METRICS)
    assert resp.status == 200
    assert resp.content_type == "text/plain"
    assert "version=" in resp.headers["Content-Type"]  # the exposition format version
    found = samples(await resp.text())

    def value(name: str, **labels: str) -> float:
        matches = [v for n, lab, v in found if n == name and labels.items() <= lab.items()]
        assert matches, (name, labels)
        return sum(matches)

    requests = "reelhouse_http_requests_total"
    assert value(requests, method="GET", route="/api/users/me", status="200") == 3
    assert value(requests, method="POST", route="/api/users", status="201") == 1
    # Routes are labelled by their template, never by the raw path.
    assert value(requests, route="/api/channels/{channel_id}", status="200") == 1
    assert value(requests, route="/api/channels/{channel_id}", status="404") == 1
    assert value(requests, route="unmatched", status="404") == 1
    assert not [lab for n, lab, _ in found if alice.channel_id in lab.get("route", "")]

    latency = "reelhouse_http_request_duration_seconds"
    assert value(latency + "_count", method="GET", route="/api/users/me") == 3
    assert value(latency + "_bucket", route="/api/users/me", le="+Inf") == 3
    assert value(latency + "_sum", route="/api/users/me") > 0
    # The request asking for /metrics is itself in flight.
    assert value("reelhouse_http_requests_in_flight") == 1
    assert "# TYPE reelhouse_http_request_duration_seconds histogram" in await resp.text()


async def test_forwarded_addresses_from_a_trusted_proxy(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    # Addresses from TEST-NET-1 (RFC 5737) only appear in headers; no traffic goes there.
    client = await limited_client(aiohttp_client, tmp_path, rate_limit_per_minute=2,
                                  trusted_proxies="127.0.0.1")
    one, two = {"X-Forwarded-For": "192.0.2.1"}, {"X-Forwarded-For": "192.0.2.2"}
    assert [(await client.get("/api/openapi.json", headers=one)).status
            for _ in range(3)] == [200, 200, 429]
    assert (await client.get("/api/openapi.json", headers=two)).status == 200


async def test_untrusted_forwarded_header_is_ignored(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await limited_client(aiohttp_client, tmp_path, rate_limit_per_minute=2,
                                  trusted_proxies="")
    statuses = [(await client.get("/api/openapi.json", headers={
        "X-Forwarded-For": f"192.0.2.{n}"})).status for n in range(3)]
    assert statuses == [200, 200, 429]


async def test_upload_budget_is_per_user_across_addresses(
    aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    client = await limited_client(aiohttp_client, tmp_path, upload_rate_limit_per_minute=2,
                                  trusted_proxies="127.0.0.1")
    alice = await sign_up(client, "alice")
    statuses = []
    for n in range(3):
        resp = await client.post("/api/videos/upload", data=b"",
                                 headers={**alice.headers, "X-Forwarded-For": f"192.0.2.{n}"})
        statuses.append(resp.status)
    assert 429 not in statuses[:2] and statuses[2] == 429, statuses
    assert int(resp.headers["Retry-After"]) >= 1


async def test_metrics_are_private(client: TestClient, tmp_path: Path,
                                   aiohttp_client: AiohttpClient) -> None:
    """Anonymous callers, ordinary users and wrong tokens see nothing; an administrator
    and the configured scraper token do. With no token set, only administrators."""
    admin = await sign_up(client, "root")  # the first account is the administrator
    user = await sign_up(client, "someone")
    for headers in ({}, user.headers, {"Authorization": "Bearer wrong"},
                    {"Authorization": f"Basic {METRICS['Authorization'][7:]}"}):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 404 and resp.content_type == "application/problem+json"
    for headers in (admin.headers, METRICS):
        resp = await client.get("/metrics", headers=headers)
        assert resp.status == 200 and "reelhouse_http_requests_total" in await resp.text()
    untokened = await aiohttp_client(create_app(make_config(tmp_path / "other",
                                                            metrics_token="")))
    assert (await untokened.get("/metrics", headers=METRICS)).status == 404
    root = await sign_up(untokened, "root")
    assert (await untokened.get("/metrics", headers=root.headers)).status == 200
