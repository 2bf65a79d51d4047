"""What is derived from an article, written again in the transaction that changes it: its
stored page and card (page_parts) and its search entry (search_rebuild).

An article's own writes rewrite its own (`article`); an author's display name and a tag's
name are printed on the pages and cards and are words of the entries, so renaming either
rewrites both for every article that carries it. Readers' caches go when it commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection
from sqlmodel.ext.asyncio.session import AsyncSession

from app.articles import page_parts, search_rebuild
from app.articles.repository import pages as repository
from app.articles.schemas import Publication
from app.core.cache import invalidate_on_commit
from app.core.config import Settings
from app.core.db import Database


async def article(
    session: AsyncSession, article_id: int, publication: Publication | None = None
) -> None:
    """Rewrite the page and search entry of one article as it now stands (none once it is
    deleted); with no `publication`, the page keeps the one it was rendered with."""
    await session.flush()
    await _rewrite(session, [article_id], publication)


async def for_author(session: AsyncSession, user_id: int) -> None:
    """Rewrite the pages and search entries of every article `user_id` wrote."""
    await session.flush()
    conn = await session.connection()
    await _rewrite(session, await conn.run_sync(repository.written_by, user_id))


async def for_tag(session: AsyncSession, tag_id: int) -> None:
    """Rewrite the pages and search entries of every article tagged `tag_id`."""
    await session.flush()
    conn = await session.connection()
    await _rewrite(session, await conn.run_sync(repository.tagged_with, tag_id))


async def _rewrite(
    session: AsyncSession, ids: Sequence[int], publication: Publication | None = None
) -> None:
    if ids:
        conn = await session.connection()
        await conn.run_sync(page_parts.render_pages, publication, ids=list(ids))
        await conn.run_sync(search_rebuild.reindex, ids)
    invalidate_on_commit(session)


async def refresh_stale(db: Database, publication: Publication) -> None:
    """Rewrite every page made with another format or publication (after an upgrade, a new
    public URL or new automatic-paywall days), and the search entries of those whose teaser
    or paywall time changed, a batch per transaction; readers' caches go after each."""
    after = 0
    while True:
        async with db.session() as session:
            conn = await session.connection()
            batch = await conn.run_sync(
                page_parts.render_batch, publication, after=after, stale_only=True
            )
            if batch is None:
                return
            await conn.run_sync(search_rebuild.reindex, batch.changed)
            invalidate_on_commit(session)
        after = batch.last


def after_migrations(conn: Connection, settings: Settings) -> None:
    """Render every page missing or stale, then fill an empty search index or rewrite the
    entries that went stale with the pages: run by Alembic once the schema is at head, so
    the code that writes them meets the schema it writes."""
    ids = page_parts.render_pages(conn, page_parts.publication(settings), stale_only=True)
    if not search_rebuild.fill_if_empty(conn):
        search_rebuild.reindex(conn, ids)
