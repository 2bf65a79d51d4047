"""Keeping a process's response cache true to the database it did not write itself.

Two things change what readers see without a write in this process: a write made in another
worker (it bumps `content_version`, see `version`) and a time passing at which an answer
changes with no write at all (a scheduled article going live). One small read, every
`response_cache_check_seconds`, sees both and clears the cache.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from app.core.cache.store import ResponseCache
from app.core.db import Query, Reads, parse_ts, utcnow

log = logging.getLogger(__name__)


class CacheFreshness:
    """Clears `cache` when the shared content version moves or the next change time passes.

    `next_change_sql` is a scalar subquery with a `:now` parameter giving the next time an
    answer changes by itself (the articles domain's next go-live), or NULL.
    """

    def __init__(self, reads: Reads, cache: ResponseCache, next_change_sql: str) -> None:
        self.reads = reads
        self.cache = cache
        self._state = Query.portable(
            # Constant SQL from the articles domain; the time goes as a parameter.
            f"SELECT (SELECT version FROM content_version WHERE id = 1), ({next_change_sql})"  # noqa: S608
        )
        self._version: int | None = None
        self._next_change: datetime | None = None

    async def check(self) -> bool:
        """Look once; give back whether the cache was cleared."""
        now = utcnow()
        row = await self.reads.one(self._state, {"now": self.reads.ts(now)})
        version = int(row[0] or 0) if row else 0
        stale = (self._version is not None and version != self._version) or (
            self._next_change is not None and self._next_change <= now
        )
        if stale:
            self.cache.clear()
        self._version = version
        self._next_change = parse_ts(row[1]) if row else None
        return stale

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        """Check every `interval` seconds until `stop` is set."""
        while not stop.is_set():
            try:
                await self.check()
            except Exception:
                # The database is away: the pages in the cache stay no longer than the TTL.
                log.warning("response cache check failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
