"""Shaping articles for readers: teasers, gated full articles, paywall box and JSON-LD.

Everything a reader without access gets is built from the free part only (preview_html,
excerpt, title, subtitle, tags): gated text is never an input to these fields.

Answers are plain dicts in the shape of `schemas.ArticleTeaser` and `schemas.ArticlePublic`:
building pydantic models per request cost more than the rest of a cached article read. Since
the routes return bytes, `response_model` is not applied to them; instead tests check every
answer against the schema's fields (tests/articles/test_reading.py compares the key sets with
`model_fields`, and the contract fuzzing in tests/contract checks each response's schema).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from app.access.decision import Access, Visibility
from app.access.levels import AccessLevel

SEO_DESCRIPTION_CHARS = 160
PAYWALL_SELECTOR = ".paywalled-content"

Authors = Sequence[tuple[int, str]]
Tags = Sequence[tuple[str, str]]
Json = dict[str, Any]


class Teasable(Protocol):
    """What a teaser needs of an article: the ORM row or a direct read both have it."""

    slug: str
    title: str
    subtitle: str
    excerpt: str
    visibility: str
    published_at: datetime | None
    reading_minutes: int
    cover_image_url: str | None
    cover_image_alt: str


class Readable(Teasable, Protocol):
    """What the article page needs besides the teaser (never the gated text itself)."""

    updated_at: datetime
    word_count: int
    seo_title: str | None
    seo_description: str | None
    comments: str
    preview_html: str


def teaser(article: Teasable, authors: Authors, tags: Tags) -> Json:
    """The archive card of an article: public fields only."""
    return {
        "slug": article.slug,
        "title": article.title,
        "subtitle": article.subtitle,
        "excerpt": article.excerpt,
        "visibility": article.visibility,
        "published_at": article.published_at,
        "reading_minutes": article.reading_minutes,
        "authors": [{"id": i, "name": n} for i, n in authors],
        "tags": [{"slug": s, "name": n} for s, n in tags],
        "cover": {"url": article.cover_image_url, "alt": article.cover_image_alt}
        if article.cover_image_url
        else None,
    }


def _seo(article: Readable) -> Json:
    description = article.seo_description or article.excerpt
    return {
        "title": article.seo_title or article.title,
        "description": description[:SEO_DESCRIPTION_CHARS],
    }


def structured_data(article: Readable, base: Json, seo: Json, public_url: str) -> Json:
    """schema.org NewsArticle JSON-LD; gated articles mark their paywalled part (hasPart)."""
    free = article.visibility == Visibility.public.value
    data: Json = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "description": seo["description"],
        "url": f"{public_url}/{article.slug}",
        "datePublished": article.published_at.isoformat() if article.published_at else None,
        "dateModified": article.updated_at.isoformat(),
        "author": [{"@type": "Person", "name": a["name"]} for a in base["authors"]],
        "keywords": [t["name"] for t in base["tags"]],
        "isAccessibleForFree": free,
    }
    if base["cover"]:
        data["image"] = [base["cover"]["url"]]
    if not free:
        data["hasPart"] = {
            "@type": "WebPageElement",
            "isAccessibleForFree": False,
            "cssSelector": PAYWALL_SELECTOR,
        }
    return data


def _paywall(slug: str, access: Access, level: AccessLevel, plans: list[Json]) -> Json:
    reader = "anonymous" if level is AccessLevel.anonymous else "member"
    needs_paid = access.required == Visibility.paid.value
    return {
        "required": access.required,
        "reader": reader,
        "message": "Subscribe now to keep reading and get access to the full archive."
        if needs_paid
        else "Sign up for free to keep reading.",
        "plans": plans if needs_paid else [],
        "checkout": {
            "endpoint": "/api/v1/billing/checkout" if needs_paid else "/api/v1/auth/signup",
            "article_slug": slug,
            "sign_in_first": reader == "anonymous",
        },
    }


def page_head(article: Readable, authors: Authors, tags: Tags, public_url: str) -> Json:
    """The article page's members that are the same for every reader (rendered at write time;
    `Readable` holds no gated text)."""
    base = teaser(article, authors, tags)
    seo = _seo(article)
    return {
        **base,
        "updated_at": article.updated_at,
        "word_count": article.word_count,
        "excerpt_html": article.preview_html,
        "seo": seo,
        "structured_data": structured_data(article, base, seo, public_url),
        "comments": article.comments,
    }


def reader_part(
    slug: str, access: Access, level: AccessLevel, plans: list[Json], comment_count: int
) -> Json:
    """The article page's members that depend on the reader and on the moment, besides the
    full text itself (`content_html`, given only where `access` grants it)."""
    return {
        "access": {"granted": access.granted, "required": access.required, "reason": access.reason},
        "paywall": None if access.granted else _paywall(slug, access, level, plans),
        "comment_count": comment_count,
    }
