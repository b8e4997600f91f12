"""Prometheus metrics, one registry per app so tests can build many apps in one process.

The per-request series (request count, latency histogram, requests in flight) are kept as
plain counters that cost a couple of dict operations per request, and are turned into
metric families only when `/metrics` is scraped (prometheus_client's custom collector
protocol). A labelled `Counter`/`Histogram` takes a lock and several lookups per
observation, which showed up as a large share of a small request's cost.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

REQUESTS = "reelhouse_http_requests"
LATENCY = "reelhouse_http_request_duration_seconds"
IN_FLIGHT = "reelhouse_http_requests_in_flight"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_go_float: Callable[[float], str] = floatToGoString  # as the Histogram class labels `le`
_BUCKET_LABELS = [_go_float(b) for b in BUCKETS] + ["+Inf"]


class _Series:
    """Latency of one (method, route): a count per bucket (not cumulative) and the sum."""

    __slots__ = ("buckets", "created", "total")

    def __init__(self) -> None:
        self.buckets = [0] * (len(BUCKETS) + 1)
        self.total = 0.0
        self.created = time.time()


class HttpStats(Collector):
    """Counts per (method, route, status) and latency per (method, route), exported as
    the same families a labelled Counter, Histogram and Gauge would give."""

    def __init__(self) -> None:
        self.in_flight = 0
        self._counts: dict[tuple[str, str, str], int] = {}
        self._created: dict[tuple[str, str, str], float] = {}
        self._latency: dict[tuple[str, str], _Series] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        counts = self._counts
        count = counts.get(key)
        if count is None:
            self._created[key] = time.time()
            count = 0
        counts[key] = count + 1
        series = self._latency.get((method, route))
        if series is None:
            series = self._latency[(method, route)] = _Series()
        series.buckets[bisect_left(BUCKETS, seconds)] += 1
        series.total += seconds

    def describe(self) -> Iterator[Metric]:
        # Lets the registry refuse a second collector of the same names.
        yield CounterMetricFamily(REQUESTS, "", labels=["method", "route", "status"])
        yield HistogramMetricFamily(LATENCY, "", labels=["method", "route"])
        yield GaugeMetricFamily(IN_FLIGHT, "")

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(REQUESTS, "HTTP requests answered",
                                       labels=["method", "route", "status"])
        for key, count in self._counts.items():
            requests.add_metric(key, count, created=self._created[key])
        yield requests
        latency = HistogramMetricFamily(LATENCY, "Time to answer a request",
                                        labels=["method", "route"])
        for (method, route), series in self._latency.items():
            cumulative, buckets = 0, []
            for label, count in zip(_BUCKET_LABELS, series.buckets, strict=True):
                cumulative += count
                buckets.append((label, float(cumulative)))
            latency.add_metric([method, route], buckets, series.total)
            latency.samples.append(Sample(f"{LATENCY}_created",
                                          {"method": method, "route": route}, series.created))
        yield latency
        yield GaugeMetricFamily(IN_FLIGHT, "Requests being answered now",
                                value=self.in_flight)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.http = HttpStats()
        self.registry.register(self.http)
        self.jobs = Gauge(
            "reelhouse_jobs", "Transcoding jobs by status", ["status"], registry=self.registry,
        )
        self.live_connections = Gauge(
            "reelhouse_live_connections", "Open WebSocket and SSE connections",
            registry=self.registry,
        )
        self.shed = Counter(
            "reelhouse_connections_shed", "Connections closed before a request was read: "
            "reason header_timeout (a late head) or per_address (max_connections_per_address)",
            ["reason"], registry=self.registry,
        )
