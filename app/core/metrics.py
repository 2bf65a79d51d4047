"""Prometheus metrics: request counts and latency histograms per route template."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """One registry per app, so several apps in one process (tests) never share counters."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "broadsheet_http_requests",
            "HTTP requests handled, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "broadsheet_http_request_duration_seconds",
            "Time to handle an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        # Looking a labelled child up costs more than counting in it (py-spy: ~5 % of an
        # article page); routes are templates, so the combinations are few.
        self._children = lru_cache(maxsize=4096)(self._labelled)

    def _labelled(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        return self.requests.labels(method, route, str(status)), self.latency.labels(method, route)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        count, latency = self._children(method, route, status)
        count.inc()
        latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
