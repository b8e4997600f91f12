"""Prometheus metrics, one registry per app so tests can build many apps in one process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "reelhouse_http_requests", "HTTP requests answered",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "reelhouse_http_request_duration_seconds", "Time to answer a request",
            ["method", "route"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.in_flight = Gauge(
            "reelhouse_http_requests_in_flight", "Requests being answered now",
            registry=self.registry,
        )
        self.jobs = Gauge(
            "reelhouse_jobs", "Transcoding jobs by status", ["status"], registry=self.registry,
        )
        self.live_connections = Gauge(
            "reelhouse_live_connections", "Open WebSocket and SSE connections",
            registry=self.registry,
        )
