"""Worker jobs of the articles domain."""

from __future__ import annotations

import time
from weakref import WeakKeyDictionary

from app.articles import search_rebuild, service
from app.core.config import Settings
from app.core.db import Database


async def publish_scheduled(db: Database, settings: Settings) -> int:  # noqa: ARG001
    """Flip scheduled articles whose time has come to published; give back how many."""
    async with db.session() as session:
        return await service.publish_due(session)


# A merge takes every segment into one, so it rewrites the whole index (about 6 s of short
# rounds on the bench archive): it starts at most once per MERGE_EVERY seconds. Between
# merges new writes sit in small segments: twenty edits made 17 on the bench archive, and
# FTS5's automerge keeps them at 5-19 as edits go on, which makes a two-word walk 2-4 times
# slower (tens of µs), not worth a rewrite each time (BENCHMARKS.md, eighth session).
MERGE_EVERY = 3600.0
_merged_at: WeakKeyDictionary[Database, float] = WeakKeyDictionary()


async def merge_search_index(db: Database, settings: Settings) -> int:  # noqa: ARG001
    """Merge one step of the SQLite search index towards one segment; give back how many
    tables had work left, so the worker goes again at once until none has."""
    if not db.is_sqlite:
        return 0  # PostgreSQL's GIN indexes merge their pending entries themselves
    last = _merged_at.get(db)
    if last is not None and time.monotonic() - last < MERGE_EVERY:
        return 0
    async with db.session() as session:
        conn = await session.connection()
        busy = await conn.run_sync(search_rebuild.merge_step)
    if not busy:
        _merged_at[db] = time.monotonic()
    return busy
