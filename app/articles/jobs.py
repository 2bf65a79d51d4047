"""Worker jobs of the articles domain."""

from __future__ import annotations

from app.articles import search_rebuild, service
from app.core import job_runs
from app.core.config import Settings
from app.core.db import Database, utcnow


async def publish_scheduled(db: Database, settings: Settings) -> int:  # noqa: ARG001
    """Flip scheduled articles whose time has come to published; give back how many."""
    async with db.session() as session:
        return await service.publish_due(session)


# A merge takes every segment into one, so it rewrites the whole index (about 6 s of short
# rounds on the bench archive): it starts at most once per MERGE_EVERY seconds, counted
# from when the last merge of any process finished (job_runs). Between merges new writes
# sit in small segments: twenty edits made 17 on the bench archive, and FTS5's automerge
# keeps them at 5-19 as edits go on, which makes a two-word walk 2-4 times slower (tens of
# µs), not worth a rewrite each time (BENCHMARKS.md, eighth session).
MERGE_EVERY = 3600.0
MERGE_JOB = "articles.merge_search_index"


async def merge_search_index(db: Database, settings: Settings) -> int:  # noqa: ARG001
    """Merge one step of the SQLite search index towards one segment; give back how many
    tables had work left, so the worker goes again at once until none has."""
    if not db.is_sqlite:
        return 0  # PostgreSQL's GIN indexes merge their pending entries themselves
    # A merge under way is due until its last step marks it finished.
    if not await _merge_due(db):
        return 0
    async with db.session() as session:
        conn = await session.connection()
        busy: int = await conn.run_sync(search_rebuild.merge_step)
        if not busy:
            await job_runs.mark_finished(session, MERGE_JOB)
    return busy


async def _merge_due(db: Database) -> bool:
    async with db.session(write=False) as session:
        last = await job_runs.finished_at(session, MERGE_JOB)
    return last is None or (utcnow() - last).total_seconds() >= MERGE_EVERY
