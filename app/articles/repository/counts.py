"""The public lists' counts of live articles: per tag, per author, per month.

A tag's or an author's count is all its links less those of the articles not live. Every
link is counted in the link table's own index, and the articles not live (drafts, archived,
scheduled for later: few, in a publication that publishes) are found by ranges of the status
index. Counting the live ones directly visited every live article: on SQLite 58 ms for
100,000 articles against 6 ms this way (BENCHMARKS.md). A month's count is a range of the
status index.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Subquery, func
from sqlalchemy import select as sa_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.repository import display_name_of
from app.articles.live import is_live, not_live_ids
from app.articles.models import Article, ArticleAuthor, ArticleTag, Tag
from app.core.db import as_utc, utcnow


def _live_links(item: Any, article_id: Any) -> Subquery:
    """Per `item` (a column of a link table) with a live article, how many (`item`, `live`)."""
    every = select(item.label("item"), func.count().label("n")).group_by(item).subquery("every")
    hidden = not_live_ids(utcnow()).subquery("hidden")
    gone = (
        select(item.label("item"), func.count().label("n"))
        .select_from(hidden)
        .join(item.table, article_id == hidden.c.id)
        .group_by(item)
        .subquery("gone")
    )
    live = every.c.n - func.coalesce(gone.c.n, 0)
    linked = every.outerjoin(gone, gone.c.item == every.c.item)
    counted = select(every.c.item, live.label("live")).select_from(linked).where(live > 0)
    return counted.subquery("counted")


async def tags_with_counts(session: AsyncSession) -> list[tuple[str, str, int]]:
    """Tags on live articles with how many, busiest first."""
    counted = _live_links(col(ArticleTag.tag_id), col(ArticleTag.article_id))
    rows = await session.exec(
        select(Tag.slug, Tag.name, counted.c.live)
        .join(counted, counted.c.item == Tag.id)
        .order_by(counted.c.live.desc(), col(Tag.name))
    )
    return [(slug, name, int(count)) for slug, name, count in rows]


async def authors_with_counts(session: AsyncSession) -> list[tuple[int, str, int]]:
    """Authors of live articles with how many, busiest first."""
    counted = _live_links(col(ArticleAuthor.user_id), col(ArticleAuthor.article_id))
    name = display_name_of(counted.c.item).label("name")
    rows = await session.exec(
        select(counted.c.item, name, counted.c.live).order_by(counted.c.live.desc(), name)
    )
    return [(int(user_id or 0), name, int(count)) for user_id, name, count in rows]


async def archive_months(session: AsyncSession) -> list[tuple[int, int, int]]:
    """Live article counts per year and month (UTC), newest first."""
    now = utcnow()
    published_at = col(Article.published_at)
    # Apart, each end is one step into the status index; together SQLite walks all of it.
    ends = [
        sa_select(end(published_at)).where(is_live(now)).scalar_subquery()
        for end in (func.min, func.max)
    ]
    first, last = (await session.execute(sa_select(*ends))).one()
    if first is None or last is None:
        return []
    months = list(_months_from(as_utc(last), as_utc(first)))
    # One count per month over its range of the status index, with no function of each
    # row's time (what grouping by year and month costs; BENCHMARKS.md). The month's bounds
    # come first: SQLite's planner takes the first bounds it is given on a column, and the
    # live rule's ("not null", "until now") span the whole index.
    per_month = [
        sa_select(func.count())
        .where(published_at >= start, published_at < end, is_live(now))
        .scalar_subquery()
        for _, _, start, end in months
    ]
    counted = (await session.execute(sa_select(*per_month))).one()
    return [(y, m, int(n)) for (y, m, _, _), n in zip(months, counted, strict=True) if n]


def _months_from(
    newest: datetime, oldest: datetime
) -> Iterator[tuple[int, int, datetime, datetime]]:
    """The months from `newest`'s back to `oldest`'s: year, month, start and end."""
    year, month = newest.year, newest.month
    while (year, month) >= (oldest.year, oldest.month):
        start = datetime(year, month, 1, tzinfo=UTC)
        end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
        yield year, month, start, end
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
