"""The edge: its request metrics (exported at scrape time by a collector), route classes and
the probes that spend no budget."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from aiohttp.pytest_plugin import AiohttpClient
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from server.app import create_app
from server.edge.classes import Route, RouteClasses, add_routes
from tests.conftest import METRICS, make_config

LATENCY = "reelhouse_http_request_duration_seconds"


async def test_latency_histogram_is_cumulative_and_matches_the_counts(
    client: TestClient[web.Request, web.Application],
) -> None:
    for _ in range(4):
        assert (await client.get("/healthz")).status == 200
    assert (await client.get("/api/nope")).status == 404
    text = await (await client.get("/metrics", headers=METRICS)).text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    histogram = families[LATENCY]
    assert histogram.type == "histogram"
    buckets = [(s.labels["le"], s.value) for s in histogram.samples
               if s.name == LATENCY + "_bucket" and s.labels["route"] == "/healthz"]
    assert [le for le, _ in buckets][-1] == "+Inf"
    assert "0.005" in {le for le, _ in buckets} and "10.0" in {le for le, _ in buckets}
    values = [v for _, v in buckets]
    assert values == sorted(values) and values[-1] == 4
    count = [s.value for s in histogram.samples
             if s.name == LATENCY + "_count" and s.labels["route"] == "/healthz"]
    assert count == [4]
    requests = families["reelhouse_http_requests"]
    assert requests.type == "counter"
    totals = {(s.labels["route"], s.labels["status"]): s.value for s in requests.samples
              if s.name.endswith("_total")}
    assert totals[("/healthz", "200")] == 4 and totals[("unmatched", "404")] == 1


async def test_cors_preflight_is_answered_at_the_edge(
    client: TestClient[web.Request, web.Application],
) -> None:
    resp = await client.options("/api/uploads", headers={
        "Origin": "https://elsewhere.example", "Access-Control-Request-Method": "POST"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    assert resp.headers.get("X-Content-Type-Options") == "nosniff"
    # Paths outside the CORS prefixes get no CORS headers from the edge.
    resp = await client.get("/healthz", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in resp.headers


async def test_route_classes_find_head_routes_of_their_own_and_of_get_routes(
    aiohttp_client: AiohttpClient,
) -> None:
    """A HEAD route of the table has its own class; the HEAD aiohttp adds to a GET route
    has that route's."""
    classes: RouteClasses | None = None

    async def kind(request: web.Request) -> web.Response:
        assert classes is not None
        return web.Response(headers={"X-Kind": classes.of(request).kind})

    table = (Route("HEAD", "/uploads/{id}", kind, "upload"),
             Route("GET", "/media/{file:.+}", kind, "media"),
             Route("GET", "/other", kind))
    classes = RouteClasses(table)
    app = web.Application()
    add_routes(app, table)
    client = await aiohttp_client(app)
    assert (await client.head("/uploads/7")).headers["X-Kind"] == "upload"
    assert (await client.head("/media/a/b.m4s")).headers["X-Kind"] == "media"
    assert (await client.get("/media/a/b.m4s")).headers["X-Kind"] == "media"
    assert (await client.head("/other")).headers["X-Kind"] == "api"


async def test_health_and_metrics_are_never_rate_limited(aiohttp_client: AiohttpClient,
                                                         tmp_path: Path) -> None:
    """A load balancer's health checks and a scraper share an address with others (issue
    22: /healthz answered 429 once its address had spent its budget)."""
    client = await aiohttp_client(create_app(make_config(tmp_path / "data",
                                                         rate_limit_per_minute=5)))
    statuses = [(await client.get("/api/videos")).status for _ in range(10)]
    assert 429 in statuses  # the address's budget is spent
    for _ in range(40):
        resp = await client.get("/healthz")
        assert resp.status == 200 and "RateLimit-Limit" not in resp.headers
        assert (await client.get("/metrics", headers=METRICS)).status == 200
    assert (await client.get("/api/videos")).status == 429
