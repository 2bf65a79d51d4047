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
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from app.access.decision import Access, Reason
from app.access.entitlements import Entitlements
from app.core.jsonutil import dumps

SEO_DESCRIPTION_CHARS = 160
PAYWALL_SELECTOR = ".paywalled-content"

Authors = Sequence[tuple[int, str]]
Tags = Sequence[tuple[str, str]]
Json = dict[str, Any]
# What the paywall says for each reason an article is refused: (message, what to do).
_REFUSALS: dict[str, tuple[str, str]] = {
    Reason.signin_required: ("Sign up for free to keep reading.", "signup"),
    Reason.subscription_required: (
        "Subscribe now to keep reading and get access to the full archive.", "checkout"
    ),
    Reason.tier_required: ("This article is for subscribers of another tier.", "checkout"),
    Reason.subscription_lapsed: ("Your subscription has ended. Renew to keep reading.", "checkout"),
    Reason.payment_failed: (
        "Your last payment failed. Update your payment method to keep reading.", "portal"
    ),
}  # fmt: skip
_ENDPOINTS = {
    "signup": "/api/v1/auth/signup",
    "checkout": "/api/v1/billing/checkout",
    "portal": "/api/v1/billing/portal",
}


class Teasable(Protocol):
    """What a teaser needs of an article: the ORM row or a direct read both have it."""

    slug: str
    title: str
    subtitle: str
    excerpt: str
    visibility: str
    published_at: datetime | None
    free_after: datetime | None
    free_until: datetime | None
    gated_at: datetime | None
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


def teaser(article: Teasable, authors: Authors, tags: Tags, tiers: Sequence[str]) -> Json:
    """The archive card of an article: public fields only. `visibility` and `tiers` are
    what the article requires before its time rules, whose times follow."""
    return {
        "slug": article.slug,
        "title": article.title,
        "subtitle": article.subtitle,
        "excerpt": article.excerpt,
        "visibility": article.visibility,
        "tiers": list(tiers),
        "free_after": article.free_after,
        "free_until": article.free_until,
        "gated_after": article.gated_at,
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


def structured_members(article: Readable, base: Json, seo: Json, public_url: str) -> bytes:
    """schema.org NewsArticle JSON-LD without its access members, as the bytes of a JSON
    object's members (`structured_data` adds them: whether it is free follows the time)."""
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
    }
    if base["cover"]:
        data["image"] = [base["cover"]["url"]]
    return dumps(data)[1:-1]


_FREE_TAIL = b',"isAccessibleForFree":true}'
# Gated articles mark their paywalled part (hasPart), as search engines ask of paywalls.
_GATED_TAIL = (
    b',"isAccessibleForFree":false,"hasPart":'
    + dumps({"@type": "WebPageElement", "isAccessibleForFree": False,
             "cssSelector": PAYWALL_SELECTOR})
    + b"}"
)  # fmt: skip


def structured_data(members: bytes, free: bool) -> bytes:
    """The JSON-LD object: the stored members and the access members of this moment."""
    return b"{" + members + (_FREE_TAIL if free else _GATED_TAIL)


def _paywall(slug: str, access: Access, reader: Entitlements, offer: Offer) -> Json:
    message, step = _REFUSALS.get(access.reason, _REFUSALS[Reason.subscription_required])
    signed_in = reader.signed_in
    return {
        "required": access.required,
        "reason": access.reason,
        "reader": "member" if signed_in else "anonymous",
        "message": message,
        "tiers": offer.tiers,
        "plans": offer.plans if step == "checkout" else [],
        "checkout": {
            "endpoint": _ENDPOINTS[step],
            "article_slug": slug,
            "sign_in_first": not signed_in,
        },
    }


@dataclass(frozen=True)
class Offer:
    """What a refused reader is offered: the tiers that would unlock the article (slug and
    name) and their plans on sale, shaped like /billing/plans."""

    tiers: list[dict[str, str]]
    plans: list[Json]


NO_OFFER = Offer([], [])


def page_head(
    article: Readable, authors: Authors, tags: Tags, tiers: Sequence[str], public_url: str
) -> tuple[Json, bytes]:
    """The article page's members that are the same for every reader and at every moment,
    and its JSON-LD members (`structured_members`), rendered at write time (`Readable`
    holds no gated text)."""
    base = teaser(article, authors, tags, tiers)
    seo = _seo(article)
    head = {
        **base,
        "updated_at": article.updated_at,
        "word_count": article.word_count,
        "excerpt_html": article.preview_html,
        "seo": seo,
        "comments": article.comments,
    }
    return head, structured_members(article, base, seo, public_url)


def reader_part(
    slug: str,
    access: Access,
    reader: Entitlements,
    offer: Offer,
    comment_count: int,
    tier_slugs: Sequence[str],
) -> Json:
    """The article page's members that depend on the reader and on the moment, besides the
    full text itself (`content_html`, given only where `access` grants it) and JSON-LD."""
    return {
        "access": {
            "granted": access.granted,
            "required": access.required,
            "reason": access.reason,
            # The tiers that would unlock it, for an article of chosen tiers.
            "tiers": list(tier_slugs) if access.tiers else [],
            "notice": access.notice,
        },
        "paywall": None if access.granted else _paywall(slug, access, reader, offer),
        "comment_count": comment_count,
    }
