"""Public reads of the archive: what is published, in pages, by slug, counted and searched."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

from sqlalchemy import ColumnElement, and_, extract, func, or_
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.articles.models import Article, ArticleAuthor, ArticleTag, SlugRedirect, Status, Tag
from app.core.db import as_utc, pk, utcnow
from app.core.pagination import decode_cursor, encode_cursor

LIVE_STATUSES = (Status.published.value, Status.scheduled.value)


def is_live(now: datetime | None = None) -> ColumnElement[bool]:
    """SQL for "the public may see it": published, or scheduled and its time has come.

    Scheduled articles appear on time even when no worker ran at that moment.
    """
    return and_(
        col(Article.status).in_(LIVE_STATUSES),
        col(Article.published_at).is_not(None),
        col(Article.published_at) <= (now or utcnow()),
    )


@dataclass(frozen=True)
class ListFilters:
    tag: str | None = None
    author: int | None = None
    visibility: str | None = None
    year: int | None = None
    month: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Extras:
    """Authors and tags of a set of articles, fetched in two queries."""

    authors: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    tags: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))

    def of(self, article_id: int) -> tuple[list[tuple[int, str]], list[tuple[str, str]]]:
        """Give back one article's authors and tags."""
        return self.authors.get(article_id, []), self.tags.get(article_id, [])


async def extras(session: AsyncSession, article_ids: Sequence[int]) -> Extras:
    out = Extras()
    if not article_ids:
        return out
    author_rows = await session.exec(
        select(ArticleAuthor.article_id, User.id, User.display_name)
        .join(User, col(User.id) == ArticleAuthor.user_id)
        .where(col(ArticleAuthor.article_id).in_(article_ids))
        .order_by(col(ArticleAuthor.position))
    )
    for article_id, user_id, name in author_rows:
        out.authors[article_id].append((pk(user_id), name))
    tag_rows = await session.exec(
        select(ArticleTag.article_id, Tag.slug, Tag.name)
        .join(Tag, col(Tag.id) == ArticleTag.tag_id)
        .where(col(ArticleTag.article_id).in_(article_ids))
        .order_by(col(Tag.name))
    )
    for article_id, slug, name in tag_rows:
        out.tags[article_id].append((slug, name))
    return out


def _month_bounds(year: int, month: int | None) -> tuple[datetime, datetime]:
    if month is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return datetime(year, month, 1, tzinfo=UTC), end


async def list_published(
    session: AsyncSession, filters: ListFilters, *, limit: int, cursor: str | None
) -> tuple[list[Article], str | None]:
    """Give back one page of the archive, newest first, and the cursor of the next page."""
    query = select(Article).where(is_live())
    if filters.visibility:
        query = query.where(Article.visibility == filters.visibility)
    if filters.tag:
        query = query.where(
            col(Article.id).in_(
                select(ArticleTag.article_id).join(Tag).where(Tag.slug == filters.tag)
            )
        )
    if filters.author is not None:
        query = query.where(
            col(Article.id).in_(
                select(ArticleAuthor.article_id).where(ArticleAuthor.user_id == filters.author)
            )
        )
    if filters.year is not None:
        start, end = _month_bounds(filters.year, filters.month)
        query = query.where(col(Article.published_at) >= start, col(Article.published_at) < end)
    if filters.since is not None:
        query = query.where(col(Article.published_at) >= as_utc(filters.since))
    if filters.until is not None:
        query = query.where(col(Article.published_at) < as_utc(filters.until))
    if cursor:
        published_raw, last_id = decode_cursor(cursor, (datetime, int))
        published = as_utc(cast(datetime, published_raw))
        # Keyset: strictly after the last row of the previous page in (published_at, id) order.
        query = query.where(
            or_(
                col(Article.published_at) < published,
                and_(col(Article.published_at) == published, col(Article.id) < last_id),
            )
        )
    query = query.order_by(col(Article.published_at).desc(), col(Article.id).desc()).limit(
        limit + 1
    )
    rows = list((await session.exec(query)).all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor(last.published_at, last.id)
    return rows, next_cursor


async def by_slug(session: AsyncSession, slug: str) -> Article | str | None:
    """Give back the live article, the new slug when `slug` is an old one, or None."""
    article = (await session.exec(select(Article).where(Article.slug == slug, is_live()))).first()
    if article is not None:
        return article
    redirect = await session.get(SlugRedirect, slug)
    if redirect is None:
        return None
    target = await session.get(Article, redirect.article_id)
    if target is None or target.status not in LIVE_STATUSES:
        return None
    if target.published_at is None or target.published_at > utcnow():
        return None
    return target.slug


async def tags_with_counts(session: AsyncSession) -> list[tuple[str, str, int]]:
    rows = await session.exec(
        select(Tag.slug, Tag.name, func.count(col(Article.id)))
        .join(ArticleTag, col(ArticleTag.tag_id) == Tag.id)
        .join(Article, col(Article.id) == ArticleTag.article_id)
        .where(is_live())
        .group_by(col(Tag.id), col(Tag.slug), col(Tag.name))
        .order_by(func.count(col(Article.id)).desc(), col(Tag.name))
    )
    return [(slug, name, count) for slug, name, count in rows]


async def authors_with_counts(session: AsyncSession) -> list[tuple[int, str, int]]:
    rows = await session.exec(
        select(User.id, User.display_name, func.count(col(Article.id)))
        .join(ArticleAuthor, col(ArticleAuthor.user_id) == User.id)
        .join(Article, col(Article.id) == ArticleAuthor.article_id)
        .where(is_live())
        .group_by(col(User.id), col(User.display_name))
        .order_by(func.count(col(Article.id)).desc(), col(User.display_name))
    )
    return [(user_id or 0, name, count) for user_id, name, count in rows]


async def archive_months(session: AsyncSession) -> list[tuple[int, int, int]]:
    year = extract("year", col(Article.published_at))
    month = extract("month", col(Article.published_at))
    rows = await session.exec(
        select(year, month, func.count(col(Article.id)))
        .where(is_live())
        .group_by(year, month)
        .order_by(year.desc(), month.desc())
    )
    return [(int(y), int(m), count) for y, m, count in rows]


TEASER_ONLY = (
    defer(Article.body_md, raiseload=True),  # type: ignore[arg-type]
    defer(Article.content_html, raiseload=True),  # type: ignore[arg-type]
    defer(Article.preview_html, raiseload=True),  # type: ignore[arg-type]
)


async def by_ids(session: AsyncSession, ids: Sequence[int]) -> list[Article]:
    """Give back live articles with these ids, in the order given (teaser columns only)."""
    if not ids:
        return []
    query = select(Article).where(col(Article.id).in_(ids), is_live()).options(*TEASER_ONLY)
    rows = (await session.exec(query)).all()
    found = {a.id: a for a in rows}
    return [found[i] for i in ids if i in found]


async def latest(session: AsyncSession, limit: int) -> list[Article]:
    rows = await session.exec(
        select(Article)
        .where(is_live())
        .order_by(col(Article.published_at).desc(), col(Article.id).desc())
        .limit(limit)
    )
    return list(rows.all())


async def sitemap_entries(session: AsyncSession, limit: int) -> list[tuple[str, datetime]]:
    rows = await session.exec(
        select(Article.slug, Article.updated_at)
        .where(is_live())
        .order_by(col(Article.published_at).desc())
        .limit(limit)
    )
    return list(rows.all())
