"""Keeping a process's response cache true to the database it did not write itself.

Two things change what readers see without a write in this process: a staff write made in
another worker (it bumps `content_version`) and a scheduled article reaching its time (no
write at all). One small read, every `response_cache_check_seconds`, sees both and clears
the cache. Comment counts on article pages are left to the cache's TTL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from app.core.db import Query, Reads, parse_ts, utcnow
from app.core.response_cache import ResponseCache

log = logging.getLogger(__name__)

# The next time an article goes live is the earliest future published_at of a published or
# scheduled article (the live rule of articles.reads); the status index serves it.
STATE = Query.portable(
    """SELECT (SELECT version FROM content_version WHERE id = 1),
  (SELECT min(published_at) FROM article
    WHERE status IN ('published', 'scheduled') AND published_at > :now)"""
)


class CacheFreshness:
    """Clears `cache` when the shared content version moves or an article goes live."""

    def __init__(self, reads: Reads, cache: ResponseCache) -> None:
        self.reads = reads
        self.cache = cache
        self._version: int | None = None
        self._next_live: datetime | None = None

    async def check(self) -> bool:
        """Look once; give back whether the cache was cleared."""
        now = utcnow()
        row = await self.reads.one(STATE, {"now": self.reads.ts(now)})
        version = int(row[0] or 0) if row else 0
        stale = (self._version is not None and version != self._version) or (
            self._next_live is not None and self._next_live <= now
        )
        if stale:
            self.cache.clear()
        self._version = version
        self._next_live = parse_ts(row[1]) if row else None
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
