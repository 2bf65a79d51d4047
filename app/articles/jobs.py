"""Worker jobs of the articles domain."""

from __future__ import annotations

from app.articles import search_rebuild, service
from app.core.config import Settings
from app.core.db import Database


async def publish_scheduled(db: Database, settings: Settings) -> int:  # noqa: ARG001
    """Flip scheduled articles whose time has come to published; give back how many."""
    async with db.session() as session:
        return await service.publish_due(session)


async def merge_search_index(db: Database, settings: Settings) -> int:  # noqa: ARG001
    """Merge one step of the SQLite search index towards one segment; give back how many
    tables had work left, so the worker goes again at once until none has."""
    if not db.is_sqlite:
        return 0  # PostgreSQL's GIN indexes merge their pending entries themselves
    async with db.session() as session:
        conn = await session.connection()
        return await conn.run_sync(search_rebuild.merge_step)
