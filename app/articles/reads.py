"""The article page's reads, done directly (app.core.reads): one query per page.

The article row comes back with its authors, tags and visible-comment count, so a page costs
one round trip; the live rule here is the same as `queries.is_live`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from app.billing.schemas import PlanOut
from app.comments.repository import VISIBLE_COMMENT_SQL
from app.core.db import Query, Reads, parse_required_ts, parse_ts, utcnow

_COLUMNS = """a.slug, a.title, a.subtitle, a.excerpt, a.visibility, a.published_at, a.updated_at,
       a.reading_minutes, a.word_count, a.cover_image_url, a.cover_image_alt, a.seo_title,
       a.seo_description, a.comments, a.preview_html, a.content_html"""
# The SQL of queries.is_live for an `article a`, with a `:now` parameter.
LIVE_SQL = """a.status IN ('published', 'scheduled') AND a.published_at IS NOT NULL
  AND a.published_at <= :now"""
# The next time an article goes live by itself (a scheduled one reaching its time), for the
# response cache's freshness check; the status index serves it.
NEXT_GO_LIVE_SQL = """SELECT min(published_at) FROM article
    WHERE status IN ('published', 'scheduled') AND published_at > :now"""
_COUNT = f"(SELECT count(*) FROM comment c WHERE c.article_id = a.id AND {VISIBLE_COMMENT_SQL})"  # noqa: S608

# The f-strings below join constant SQL pieces only; every value goes as a parameter.
ARTICLE = Query(
    sqlite=f"""SELECT {_COLUMNS},
  (SELECT json_group_array(json_array(aa.position, u.id, u.display_name))
     FROM article_author aa JOIN "user" u ON u.id = aa.user_id WHERE aa.article_id = a.id),
  (SELECT json_group_array(json_array(t.slug, t.name))
     FROM article_tag at JOIN tag t ON t.id = at.tag_id WHERE at.article_id = a.id),
  {_COUNT}
FROM article a WHERE a.slug = :slug AND {LIVE_SQL}""",  # noqa: S608
    postgres=f"""SELECT {_COLUMNS},
  (SELECT coalesce(json_agg(json_build_array(aa.position, u.id, u.display_name)), '[]')::text
     FROM article_author aa JOIN "user" u ON u.id = aa.user_id WHERE aa.article_id = a.id),
  (SELECT coalesce(json_agg(json_build_array(t.slug, t.name)), '[]')::text
     FROM article_tag at JOIN tag t ON t.id = at.tag_id WHERE at.article_id = a.id),
  {_COUNT}
FROM article a WHERE a.slug = :slug AND {LIVE_SQL}""",  # noqa: S608
)

_REDIRECT_SQL = f"""SELECT a.slug FROM slug_redirect r JOIN article a ON a.id = r.article_id
WHERE r.old_slug = :slug AND {LIVE_SQL}"""  # noqa: S608
REDIRECT = Query.portable(_REDIRECT_SQL)

# The columns are PlanOut's fields, so the paywall's plans have the shape /billing/plans has.
_PLAN_KEYS = tuple(PlanOut.model_fields)
_PLANS_SQL = f"""SELECT {", ".join(_PLAN_KEYS)}
FROM plan WHERE active = :active ORDER BY sort_order, id"""  # noqa: S608 - field names only
PLANS = Query.portable(_PLANS_SQL)


@dataclass(slots=True)
class ArticleRead:
    """A live article as the page needs it (satisfies `presenter.Readable`)."""

    slug: str
    title: str
    subtitle: str
    excerpt: str
    visibility: str
    published_at: datetime | None
    updated_at: datetime
    reading_minutes: int
    word_count: int
    cover_image_url: str | None
    cover_image_alt: str
    seo_title: str | None
    seo_description: str | None
    comments: str
    preview_html: str
    content_html: str
    authors: list[tuple[int, str]]
    tags: list[tuple[str, str]]
    comment_count: int


def _article(row: tuple[Any, ...]) -> ArticleRead:
    (slug, title, subtitle, excerpt, visibility, published_at, updated_at, reading_minutes,
     word_count, cover_url, cover_alt, seo_title, seo_description, comments, preview_html,
     content_html, authors_json, tags_json, comment_count) = row  # fmt: skip
    # Aggregates carry no order of their own: authors by position, tags by name.
    authors = sorted(orjson.loads(authors_json))
    tags = sorted(orjson.loads(tags_json), key=lambda t: (t[1], t[0]))
    return ArticleRead(
        slug=slug,
        title=title,
        subtitle=subtitle,
        excerpt=excerpt,
        visibility=visibility,
        published_at=parse_ts(published_at),
        updated_at=parse_required_ts(updated_at),
        reading_minutes=reading_minutes,
        word_count=word_count,
        cover_image_url=cover_url,
        cover_image_alt=cover_alt,
        seo_title=seo_title,
        seo_description=seo_description,
        comments=comments,
        preview_html=preview_html,
        content_html=content_html,
        authors=[(user_id, name) for _, user_id, name in authors],
        tags=[(s, n) for s, n in tags],
        comment_count=comment_count,
    )


async def live_article(reads: Reads, slug: str) -> ArticleRead | str | None:
    """Give back the live article, the new slug when `slug` is an old one, or None."""
    now = reads.ts(utcnow())
    row = await reads.one(ARTICLE, {"slug": slug, "now": now})
    if row is not None:
        return _article(row)
    moved = await reads.one(REDIRECT, {"slug": slug, "now": now})
    return str(moved[0]) if moved is not None else None


async def plans_on_sale(reads: Reads) -> list[dict[str, Any]]:
    """The active plans in display order, shaped like `billing.schemas.PlanOut`."""
    return [
        dict(zip(_PLAN_KEYS, row, strict=True)) for row in await reads.all(PLANS, {"active": True})
    ]
