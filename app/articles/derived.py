"""What is derived from the names an article carries, made again when a name changes.

An author's display name and a tag's name are printed on the stored pages and cards
(page_parts) and are words of the search entries (search_rebuild): renaming either rewrites
both for every article that carries it, in the rename's own transaction, and the readers'
caches go when it commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from app.articles import page_parts, search_rebuild
from app.articles.repository import pages as repository
from app.core.cache import invalidate_on_commit


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


async def _rewrite(session: AsyncSession, ids: Sequence[int]) -> None:
    if ids:
        conn = await session.connection()
        await conn.run_sync(page_parts.render_pages, None, ids=ids)
        await conn.run_sync(search_rebuild.reindex, ids)
    invalidate_on_commit(session)
