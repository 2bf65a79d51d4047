"""Every statement the articles domain runs: the archive's reads, the article page's one-statement
direct read, the staff side's reads and writes. The stored pages' statements are in
pages.py, the archive's pages of cards in archive.py, the public lists' counts in counts.py,
the search index's in search_index.py; "live" comes from live.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import defer
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.accounts.repository import display_name_of
from app.articles.live import LIVE_SQL, is_live
from app.articles.models import (
    Article,
    ArticleAuthor,
    ArticleRevision,
    ArticleTag,
    ArticleTier,
    SlugRedirect,
    Status,
    Tag,
)
from app.articles.schemas import Extras, PageRead
from app.billing.models import Tier
from app.comments.repository import visible_count_sql
from app.core.db import IN_IDS, Gathered, Query, Reads, ids_param, pk, utcnow
from app.core.pagination import newest_first

# --- the archive (ORM, read sessions; its pages of cards are in archive.py) ---


async def extras(session: AsyncSession, article_ids: Sequence[int]) -> Extras:
    out = Extras()
    if not article_ids:
        return out
    author_rows = await session.exec(
        select(
            ArticleAuthor.article_id,
            ArticleAuthor.user_id,
            display_name_of(ArticleAuthor.user_id),
        )
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
    tier_rows = await session.exec(
        select(ArticleTier.article_id, Tier.slug)
        .join(Tier, col(Tier.id) == ArticleTier.tier_id)
        .where(col(ArticleTier.article_id).in_(article_ids))
        .order_by(col(Tier.slug))
    )
    for article_id, slug in tier_rows:
        out.tiers[article_id].append(slug)
    return out


# The live rule is selected as a column, not filtered on: in the WHERE, SQLite's planner
# walked the status index of every live article (17 ms for 20 hits, not 1). On SQLite it is
# read from a covering index: an article row keeps its status behind its long text columns,
# in overflow pages (20 random hits: 0.39 ms through the rows, 0.18 through the index).
_CARDS_SQL = """SELECT p.article_id, p.teaser, {live}
FROM article_page p JOIN article a {by_id} ON a.id = p.article_id WHERE p.article_id {ids}"""
CARDS = Query(
    sqlite=_CARDS_SQL.format(
        live=LIVE_SQL["sqlite"], by_id="INDEXED BY ix_article_live_by_id", ids=IN_IDS["sqlite"]
    ),
    postgres=_CARDS_SQL.format(live=LIVE_SQL["postgres"], by_id="", ids=IN_IDS["postgres"]),
)


async def live_cards(reads: Reads, ids: Sequence[int]) -> list[bytes]:
    """The stored cards of the live articles among `ids` (search hits), in their order."""
    if not ids:
        return []
    params = {"ids": ids_param(reads.dialect, ids), "now": reads.ts(utcnow())}
    rows = await reads.all(CARDS, params)
    found = {int(i): bytes(card) for i, card, live in rows if live}
    return [found[i] for i in ids if i in found]


async def by_slug(session: AsyncSession, slug: str) -> Article | str | None:
    """Give back the live article, the new slug when `slug` is an old one, or None."""
    article = (await session.exec(select(Article).where(Article.slug == slug, is_live()))).first()
    if article is not None:
        return article
    moved = await session.exec(
        select(Article.slug)
        .join(SlugRedirect, col(SlugRedirect.article_id) == Article.id)
        .where(SlugRedirect.old_slug == slug, is_live())
    )
    return moved.first()


TEASER_ONLY = (
    defer(Article.body_md, raiseload=True),  # type: ignore[arg-type]
    defer(Article.content_html, raiseload=True),  # type: ignore[arg-type]
    defer(Article.preview_html, raiseload=True),  # type: ignore[arg-type]
)


async def latest(session: AsyncSession, limit: int) -> list[Article]:
    rows = await session.exec(
        select(Article)
        .options(*TEASER_ONLY)
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


# --- the article page: one direct read (`db.reads`) per page ---

# The stored page (page_parts) joined through the covering index of the article's slug and
# live state; the comment count is the one part read live. PostgreSQL reads the pages asked
# for together in one statement (core/db/gathered.py).
_PAGE_SQL = """SELECT a.slug, p.rules, p.head, p.structured, p.content, {count}
FROM article a JOIN article_page p ON p.article_id = a.id
WHERE a.slug {slug} AND {live}"""
PAGE = Gathered(
    Query(
        sqlite=_PAGE_SQL.format(
            count=visible_count_sql("a.id"), slug="= :slug", live=LIVE_SQL["sqlite"]
        ),
        postgres=_PAGE_SQL.format(
            count=visible_count_sql("a.id"), slug="= ANY(:slug)", live=LIVE_SQL["postgres"]
        ),
    ),
    key="slug",
)

_REDIRECT_SQL = """SELECT a.slug FROM slug_redirect r JOIN article a ON a.id = r.article_id
WHERE r.old_slug = :slug AND {live}"""
REDIRECT = Query(
    sqlite=_REDIRECT_SQL.format(live=LIVE_SQL["sqlite"]),
    postgres=_REDIRECT_SQL.format(live=LIVE_SQL["postgres"]),
)


async def live_page(reads: Reads, slug: str) -> PageRead | str | None:
    """Give back the live article's stored page, the new slug when `slug` is an old one, or
    None."""
    now = reads.ts(utcnow())
    pages = await reads.gathered(PAGE, {"slug": slug, "now": now})
    if pages:
        rules, head, structured, content, comment_count = pages[0]
        return PageRead(bytes(rules), bytes(head), bytes(structured), bytes(content), comment_count)
    moved = await reads.one(REDIRECT, {"slug": slug, "now": now})
    return str(moved[0]) if moved is not None else None


# --- the staff side (write sessions) ---


async def article(session: AsyncSession, article_id: int) -> Article | None:
    return await session.get(Article, article_id)


async def not_live_state(
    session: AsyncSession, article_id: int, at: datetime | None = None
) -> tuple[str, datetime | None] | None:
    """The article's (status, published_at) unless it is live at `at` (now) or missing."""
    query = select(col(Article.status), col(Article.published_at), is_live(at)).where(
        col(Article.id) == article_id
    )
    row = (await session.exec(query)).first()
    if row is None or row[2]:
        return None
    return row[0], row[1]


async def author_ids(session: AsyncSession, article_id: int) -> list[int]:
    rows = await session.exec(
        select(ArticleAuthor.user_id)
        .where(ArticleAuthor.article_id == article_id)
        .order_by(col(ArticleAuthor.position))
    )
    return list(rows.all())


async def id_of_slug(session: AsyncSession, slug: str) -> int | None:
    """The id of the article that has `slug` now, if any."""
    return (await session.exec(select(Article.id).where(Article.slug == slug))).first()


async def redirect(session: AsyncSession, old_slug: str) -> SlugRedirect | None:
    return await session.get(SlugRedirect, old_slug)


async def tag_by_slug(session: AsyncSession, slug: str) -> Tag | None:
    return (await session.exec(select(Tag).where(Tag.slug == slug))).first()


async def tag_links(session: AsyncSession, article_id: int) -> Sequence[ArticleTag]:
    return (await session.exec(select(ArticleTag).where(ArticleTag.article_id == article_id))).all()


async def tier_links(session: AsyncSession, article_id: int) -> Sequence[ArticleTier]:
    query = select(ArticleTier).where(ArticleTier.article_id == article_id)
    return (await session.exec(query)).all()


async def author_links(session: AsyncSession, article_id: int) -> Sequence[ArticleAuthor]:
    query = select(ArticleAuthor).where(ArticleAuthor.article_id == article_id)
    return (await session.exec(query)).all()


async def bump_version(session: AsyncSession, article_id: int, old: int) -> bool:
    """Raise the version from `old` by one, only if it still is `old`; say if it was."""
    result = await session.exec(
        update(Article)
        .where(col(Article.id) == article_id, col(Article.version) == old)
        .values(version=old + 1)
    )
    return bool(result.rowcount == 1)


async def revisions(session: AsyncSession, article_id: int) -> Sequence[ArticleRevision]:
    rows = await session.exec(
        select(ArticleRevision)
        .where(ArticleRevision.article_id == article_id)
        .order_by(col(ArticleRevision.version).desc())
    )
    return rows.all()


async def revision(session: AsyncSession, revision_id: int) -> ArticleRevision | None:
    return await session.get(ArticleRevision, revision_id)


async def publish_due(session: AsyncSession) -> int:
    """Mark scheduled articles whose time has come as published; give back how many."""
    result = await session.exec(
        update(Article)
        .where(col(Article.status) == Status.scheduled.value, col(Article.published_at) <= utcnow())
        .values(status=Status.published.value)
    )
    return result.rowcount


async def staff_page(
    session: AsyncSession,
    *,
    author_id: int | None,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[Article], str | None]:
    """One page of all articles, newest first; only `author_id`'s when given."""
    query: SelectOfScalar[Article] = select(Article)
    if author_id is not None:
        query = query.where(
            col(Article.id).in_(
                select(ArticleAuthor.article_id).where(ArticleAuthor.user_id == author_id)
            )
        )
    if status is not None:
        query = query.where(Article.status == status)
    return await newest_first(session, query, col(Article.id), limit=limit, cursor=cursor)


# Statements the staff console runs (admin)


async def id_of_title(session: AsyncSession, title: str) -> int | None:
    """The id of an article with exactly this title, if any (the demo seed matches by title)."""
    return (await session.exec(select(Article.id).where(Article.title == title))).first()
