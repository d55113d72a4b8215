"""Prometheus metrics of one service instance (``GET /metrics``).

Each app gets its own :class:`~prometheus_client.CollectorRegistry`, so several
apps in one process (tests) do not collide. Labels are bounded: ``route`` is the
route *template* (``/v1/banks/{name}``), never the raw path, and ``unmatched``
for unknown paths, so hostile URLs cannot blow up the series count.

Series:

* ``sentinelle_requests_total{method,route,status}``
* ``sentinelle_request_seconds{route}`` (histogram)
* ``sentinelle_matches_total{signal}`` -- matches reported by the media/hash routes
* ``sentinelle_index_entries{index}`` -- entries in the in-memory indexes
* ``sentinelle_index_sync_lag_seconds`` -- seconds since the index was last current
* ``sentinelle_index_sync_failures_total``
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

if TYPE_CHECKING:
    from .state import ServiceState

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, state: ServiceState) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sentinelle_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "sentinelle_request_seconds",
            "HTTP request duration",
            ["route"],
            buckets=BUCKETS,
            registry=r,
        )
        self.matches = Counter("sentinelle_matches", "Matches reported", ["signal"], registry=r)
        entries = Gauge(
            "sentinelle_index_entries", "Entries in the in-memory indexes", ["index"], registry=r
        )
        m = state.matcher
        entries.labels("pdq").set_function(lambda: len(m._pdq))
        entries.labels("vpdq").set_function(lambda: len(m._vpdq))
        lag = Gauge(
            "sentinelle_index_sync_lag_seconds",
            "Seconds since the in-memory index was last known current",
            registry=r,
        )
        lag.set_function(lambda: state.sync.lag_s() if state.sync.lag_s() is not None else -1)
        fails = Gauge(
            "sentinelle_index_sync_failures", "Failed index refreshes since start", registry=r
        )
        fails.set_function(lambda: state.sync.failures)
        up = Gauge("sentinelle_uptime_seconds", "Seconds since start", registry=r)
        import time

        up.set_function(lambda: time.time() - state.started_at)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    def count_matches(self, matches: list) -> None:
        for mt in matches:
            self.matches.labels(getattr(mt, "signal", "unknown")).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
