"""What is derived from an article, written again in the transaction that changes it: its
stored page and card (page_parts) and its search entry (search_rebuild).

An article's own writes rewrite its own (`article`); an author's display name and a tag's
name are printed on the pages and cards and are words of the entries, so renaming either
rewrites both for every article that carries it. Readers' caches go when it commits.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from app.articles import page_parts, search_rebuild
from app.articles.repository import pages as repository
from app.core.cache import invalidate_on_commit


async def article(session: AsyncSession, article_id: int, public_url: str | None = None) -> None:
    """Rewrite the page and search entry of one article as it now stands (none once it is
    deleted); with no `public_url`, the page keeps the URL it was rendered for."""
    await session.flush()
    await _rewrite(session, [article_id], public_url)


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
    session: AsyncSession, ids: Sequence[int], public_url: str | None = None
) -> None:
    if ids:
        conn = await session.connection()
        await conn.run_sync(page_parts.render_pages, public_url, ids=list(ids))
        await conn.run_sync(search_rebuild.reindex, ids)
    invalidate_on_commit(session)
