"""Shaping articles for readers: teasers, gated full articles, paywall box and JSON-LD.

Everything a reader without access gets is built from the free part only (preview_html,
excerpt, title, subtitle, tags): gated text is never an input to these fields.
"""

from __future__ import annotations

from typing import Any

from app.articles.gating import Access
from app.articles.models import Article, Visibility
from app.articles.queries import Extras
from app.articles.schemas import (
    AccessOut,
    ArticlePublic,
    ArticleTeaser,
    AuthorOut,
    CoverOut,
    PaywallOut,
    SeoOut,
    TagOut,
)
from app.billing.entitlements import AccessLevel
from app.core.db import pk

SEO_DESCRIPTION_CHARS = 160
PAYWALL_SELECTOR = ".paywalled-content"


def teaser(article: Article, extra: Extras) -> ArticleTeaser:
    article_id = pk(article.id)
    return ArticleTeaser(
        slug=article.slug,
        title=article.title,
        subtitle=article.subtitle,
        excerpt=article.excerpt,
        visibility=Visibility(article.visibility),
        published_at=article.published_at,
        reading_minutes=article.reading_minutes,
        authors=[AuthorOut(id=i, name=n) for i, n in extra.authors.get(article_id, [])],
        tags=[TagOut(slug=s, name=n) for s, n in extra.tags.get(article_id, [])],
        cover=CoverOut(url=article.cover_image_url, alt=article.cover_image_alt)
        if article.cover_image_url
        else None,
    )


def _seo(article: Article) -> SeoOut:
    description = article.seo_description or article.excerpt
    return SeoOut(
        title=article.seo_title or article.title,
        description=description[:SEO_DESCRIPTION_CHARS],
    )


def structured_data(article: Article, base: ArticleTeaser, public_url: str) -> dict[str, Any]:
    """schema.org NewsArticle JSON-LD; gated articles mark their paywalled part (hasPart)."""
    free = article.visibility == Visibility.public.value
    data: dict[str, Any] = {
        "@context": "https://schema.org",
        "@type": "NewsArticle",
        "headline": article.title,
        "description": _seo(article).description,
        "url": f"{public_url}/{article.slug}",
        "datePublished": article.published_at.isoformat() if article.published_at else None,
        "dateModified": article.updated_at.isoformat(),
        "author": [{"@type": "Person", "name": a.name} for a in base.authors],
        "keywords": [t.name for t in base.tags],
        "isAccessibleForFree": free,
    }
    if base.cover:
        data["image"] = [base.cover.url]
    if not free:
        data["hasPart"] = {
            "@type": "WebPageElement",
            "isAccessibleForFree": False,
            "cssSelector": PAYWALL_SELECTOR,
        }
    return data


def full(
    article: Article,
    extra: Extras,
    access: Access,
    level: AccessLevel,
    *,
    public_url: str,
    plans: list[dict[str, Any]],
    comment_count: int = 0,
) -> ArticlePublic:
    """The article page: full text with access, otherwise the free part and a paywall box."""
    base = teaser(article, extra)
    paywall = None
    if not access.granted:
        reader = "anonymous" if level is AccessLevel.anonymous else "member"
        needs_paid = access.required == Visibility.paid.value
        message = (
            "Subscribe now to keep reading and get access to the full archive."
            if needs_paid
            else "Sign up for free to keep reading."
        )
        paywall = PaywallOut(
            required=Visibility(access.required),
            reader=reader,
            message=message,
            plans=plans if needs_paid else [],
            checkout={
                "endpoint": "/api/v1/billing/checkout" if needs_paid else "/api/v1/auth/signup",
                "article_slug": article.slug,
                "sign_in_first": reader == "anonymous",
            },
        )
    return ArticlePublic(
        **base.model_dump(),
        updated_at=article.updated_at,
        word_count=article.word_count,
        access=AccessOut(
            granted=access.granted, required=Visibility(access.required), reason=access.reason
        ),
        content_html=article.content_html if access.granted else None,
        excerpt_html=article.preview_html,
        paywall=paywall,
        seo=_seo(article),
        structured_data=structured_data(article, base, public_url),
        comments=article.comments,
        comment_count=comment_count,
    )
