"""The background worker loop: runs each domain's periodic jobs until told to stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from app.core.config import Settings
from app.core.db import Database

log = logging.getLogger("broadsheet.worker")

# A job does one bounded round of work and returns how many items it handled,
# so the loop can go again at once while there is work and idle when there is none.
Job = Callable[[Database, Settings], Awaitable[int]]


@dataclass(frozen=True)
class NamedJob:
    name: str
    run: Job


async def run_once(db: Database, settings: Settings, jobs: Sequence[NamedJob]) -> int:
    """Run every job once; give back the total work done. A failing job never stops the rest."""
    done = 0
    for job in jobs:
        try:
            done += await job.run(db, settings)
        except Exception:
            log.exception("worker job failed", extra={"job": job.name})
    return done


async def run_forever(
    db: Database,
    settings: Settings,
    jobs: Sequence[NamedJob],
    stop: asyncio.Event,
    *,
    idle_seconds: float = 1.0,
) -> None:
    """Loop over the jobs until `stop` is set, sleeping only when a round found nothing to do."""
    log.info("worker started", extra={"jobs": [job.name for job in jobs]})
    while not stop.is_set():
        done = await run_once(db, settings, jobs)
        if done:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=idle_seconds)
    log.info("worker stopped")
