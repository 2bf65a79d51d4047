"""The served app with a probe of its event loop, for `python -m bench.run --stall-probe`.

A task sleeps 2 ms at a time and records how late it wakes: a late wake is a span in which no
request of the worker could run, whatever held the loop. Garbage collections are timed too.
`GET /_bench/stalls` gives back what was seen since the last call (and starts the probe on
the first), so bench.run reads one report per scenario. Answers inside the app time what a
request costs once it runs; this says whether requests waited for the loop.
"""

from __future__ import annotations

import asyncio
import gc
import time
from typing import Any

from fastapi import FastAPI

from app.main import create_app as create_broadsheet

PROBE_SECONDS = 0.002


class LoopProbe:
    """Late wakes of a sleeping task and the collector's pauses, since the last report."""

    def __init__(self) -> None:
        self.late: list[float] = []
        self.collections: list[tuple[int, float]] = []
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
            gc.callbacks.append(self._on_gc)

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(PROBE_SECONDS)
            self.late.append(time.perf_counter() - started - PROBE_SECONDS)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        else:
            took = time.perf_counter() - self._gc_started
            self.collections.append((int(info["generation"]), took))

    def report(self) -> dict[str, Any]:
        """Give back the stalls seen since the last report, and forget them."""
        late, self.late = sorted(self.late), []
        collections, self.collections = self.collections, []
        full = [seconds for generation, seconds in collections if generation == 2]
        return {
            "wakes": len(late),
            "late_p50_ms": _ms(late, 0.5),
            "late_p99_ms": _ms(late, 0.99),
            "late_max_ms": _ms(late, 1.0),
            "late_over_20_ms": sum(1 for x in late if x > 0.02),
            "late_over_100_ms": sum(1 for x in late if x > 0.1),
            "late_total_over_20_ms": round(sum(x for x in late if x > 0.02) * 1000, 1),
            "collections": len(collections),
            "collections_full": len(full),
            "collection_max_ms": round(max((s for _, s in collections), default=0.0) * 1000, 1),
            "collection_total_ms": round(sum(s for _, s in collections) * 1000, 1),
        }


def _ms(values: list[float], share: float) -> float:
    if not values:
        return 0.0
    return round(values[min(len(values) - 1, int(len(values) * share))] * 1000, 1)


def create_app() -> FastAPI:
    """Broadsheet as bench.run serves it, plus the probe's report route."""
    app = create_broadsheet()
    probe = LoopProbe()

    @app.get("/_bench/stalls", include_in_schema=False)
    async def stalls() -> dict[str, Any]:
        probe.start()
        return probe.report()

    return app
