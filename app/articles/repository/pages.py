"""The statements of the article pages rendered at write time (`article_page`): what a page is
rendered from, and its writes. They run on a synchronous connection, so the migration that
creates the pages, the bench's seed and the app (through `run_sync`) share them.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Select, bindparam, or_, select, text, update
from sqlmodel import col

from app.accounts.repository import display_name_of
from app.articles.models import Article, ArticleAuthor, ArticlePage, ArticleTag, ArticleTier, Tag
from app.articles.schemas import PageSource
from app.billing.models import Tier
from app.core.db import as_utc, pk

_SOURCE = (
    Article.id, Article.slug, Article.title, Article.subtitle, Article.excerpt,
    Article.visibility, Article.published_at, Article.updated_at, Article.reading_minutes,
    Article.word_count, Article.cover_image_url, Article.cover_image_alt, Article.seo_title,
    Article.seo_description, Article.comments, Article.preview_html, Article.content_html,
    Article.free_after, Article.free_until, Article.gated_after_days, Article.auto_paywall,
    Article.excerpt_override, Article.gated_at, ArticlePage.public_url, ArticlePage.paywall_days,
)  # fmt: skip


def _sources() -> Select[Any]:
    page = col(ArticlePage.article_id) == col(Article.id)
    return select(*map(col, _SOURCE)).outerjoin(ArticlePage, page).order_by(col(Article.id))


def sources(
    conn: Connection,
    *,
    after: int,
    limit: int,
    ids: Sequence[int] | None = None,
    stale: tuple[int, Any] | None = None,
) -> list[PageSource]:
    """Up to `limit` articles with ids above `after`: those in `ids` if given, and only
    those without a page of `stale`'s (format, publication) if given."""
    query = _sources().where(col(Article.id) > after).limit(limit)
    if ids is not None:
        query = query.where(col(Article.id).in_(ids))
    if stale is not None:
        page_format, publication = stale
        query = query.where(
            or_(
                col(ArticlePage.article_id).is_(None),
                col(ArticlePage.format) != page_format,
                col(ArticlePage.public_url) != publication.public_url,
                col(ArticlePage.paywall_days).is_distinct_from(publication.paywall_days),
            )
        )
    return [_source(row) for row in conn.execute(query)]


def _source(row: Any) -> PageSource:
    (article_id, slug, title, subtitle, excerpt, visibility, published_at, updated_at,
     reading_minutes, word_count, cover_url, cover_alt, seo_title, seo_description, comments,
     preview_html, content_html, free_after, free_until, own_days, auto_paywall,
     excerpt_override, gated_at, page_url, page_days) = row  # fmt: skip
    return PageSource(
        id=pk(article_id),
        slug=slug,
        title=title,
        subtitle=subtitle,
        excerpt=excerpt,
        visibility=visibility,
        published_at=published_at,
        updated_at=updated_at,
        reading_minutes=reading_minutes,
        word_count=word_count,
        cover_image_url=cover_url,
        cover_image_alt=cover_alt,
        seo_title=seo_title,
        seo_description=seo_description,
        comments=comments,
        preview_html=preview_html,
        content_html=content_html,
        free_after=free_after,
        free_until=free_until,
        gated_after_days=own_days,
        auto_paywall=bool(auto_paywall),
        excerpt_override=excerpt_override,
        gated_at=as_utc(gated_at) if gated_at is not None else None,
        page_url=page_url,
        page_paywall_days=page_days,
    )


def bylines(conn: Connection, ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """Each article's authors (id, name), in their order on the byline."""
    author = col(ArticleAuthor.user_id)
    rows = conn.execute(
        select(col(ArticleAuthor.article_id), author, display_name_of(ArticleAuthor.user_id))
        .where(col(ArticleAuthor.article_id).in_(ids))
        .order_by(col(ArticleAuthor.article_id), col(ArticleAuthor.position))
    )
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for article_id, user_id, name in rows:
        out[article_id].append((pk(user_id), name))
    return out


def tag_lists(conn: Connection, ids: Sequence[int]) -> dict[int, list[tuple[str, str]]]:
    """Each article's tags (slug, name), by name."""
    rows = conn.execute(
        select(col(ArticleTag.article_id), col(Tag.slug), col(Tag.name))
        .join(Tag, col(Tag.id) == ArticleTag.tag_id)
        .where(col(ArticleTag.article_id).in_(ids))
        .order_by(col(Tag.name), col(Tag.slug))
    )
    out: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for article_id, slug, name in rows:
        out[article_id].append((slug, name))
    return out


def tier_lists(conn: Connection, ids: Sequence[int]) -> dict[int, list[tuple[int, str]]]:
    """Each article's tiers (id, slug), by slug."""
    rows = conn.execute(
        select(col(ArticleTier.article_id), col(Tier.id), col(Tier.slug))
        .join(Tier, col(Tier.id) == ArticleTier.tier_id)
        .where(col(ArticleTier.article_id).in_(ids))
        .order_by(col(Tier.slug))
    )
    out: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for article_id, tier_id, slug in rows:
        out[article_id].append((pk(tier_id), slug))
    return out


def written_by(conn: Connection, user_id: int) -> list[int]:
    """The ids of the articles `user_id` is an author of."""
    query = select(col(ArticleAuthor.article_id)).where(col(ArticleAuthor.user_id) == user_id)
    return [pk(row[0]) for row in conn.execute(query)]


def tagged_with(conn: Connection, tag_id: int) -> list[int]:
    """The ids of the articles tagged `tag_id`."""
    query = select(col(ArticleTag.article_id)).where(col(ArticleTag.tag_id) == tag_id)
    return [pk(row[0]) for row in conn.execute(query)]


_SAVE = text(
    "INSERT INTO article_page (article_id, teaser, head, content, format, public_url,"
    " structured, rules, paywall_days)"
    " VALUES (:article_id, :teaser, :head, :content, :format, :public_url, :structured,"
    " :rules, :paywall_days)"
    " ON CONFLICT (article_id) DO UPDATE SET teaser = excluded.teaser, head = excluded.head,"
    " content = excluded.content, format = excluded.format, public_url = excluded.public_url,"
    " structured = excluded.structured, rules = excluded.rules,"
    " paywall_days = excluded.paywall_days"
)
_DERIVED = (
    update(Article)
    .where(col(Article.id) == bindparam("article_id"))
    .values(gated_at=bindparam("gated_at"), excerpt=bindparam("excerpt"))
)


def save(conn: Connection, pages: list[dict[str, Any]]) -> None:
    """Write these pages, replacing the ones the articles had, and what was worked out with
    each: when its automatic paywall closes and its teaser."""
    if pages:
        conn.execute(_SAVE, pages)
        conn.execute(
            _DERIVED.execution_options(synchronize_session=False),
            [{k: p[k] for k in ("article_id", "gated_at", "excerpt")} for p in pages],
        )
