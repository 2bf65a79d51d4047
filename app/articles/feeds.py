"""RSS 2.0 feed and sitemap: excerpts and links only, never gated text.

Both are the same for every reader and cost a full read to build, so they are answered from
the response cache (cleared by staff writes like every reader answer). Text reaches them only
through `_xml`, which drops what XML 1.0 cannot carry: one stored control character must not
break the feed for everyone.
"""

from __future__ import annotations

import re
from xml.etree import ElementTree as ET

from fastapi import Request, Response
from feedgen.feed import FeedGenerator

from app.articles import queries
from app.core.cache import ResponseCache, cached_response
from app.core.db import pk
from app.core.deps import DatabaseDep, SettingsDep
from app.core.routing import api_router

router = api_router(tags=["feeds"])

# Characters XML 1.0 does not allow (lxml refuses to write them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
FEED_ITEMS = 50
SITEMAP_LIMIT = 50_000  # the sitemap protocol's per-file maximum
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _xml(text: str) -> str:
    return _NOT_XML.sub("", text)


def _cache(request: Request) -> ResponseCache:
    cache: ResponseCache = request.app.state.response_cache
    return cache


class RSSResponse(Response):
    media_type = "application/rss+xml"


class XMLResponse(Response):
    media_type = "application/xml"


@router.get("/feed.xml", response_class=RSSResponse)
async def rss(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """The latest articles as RSS 2.0, with teasers only."""

    async def render() -> bytes:
        async with db.session(write=False) as session:
            articles = await queries.latest(session, FEED_ITEMS)
            extra = await queries.extras(session, [a.id for a in articles if a.id is not None])
        feed = FeedGenerator()
        feed.title(_xml(settings.publication_name))
        feed.link(href=settings.public_url, rel="alternate")
        feed.description(_xml(settings.publication_description))
        feed.language("en")
        for article in reversed(articles):
            entry = feed.add_entry()
            url = f"{settings.public_url}/{article.slug}"
            entry.guid(url, permalink=True)
            entry.link(href=url)
            entry.title(_xml(article.title))
            entry.description(_xml(article.excerpt))
            if article.published_at:
                entry.pubDate(article.published_at)
            for _, name in extra.tags.get(pk(article.id), []):
                entry.category(term=_xml(name))
            for _, name in extra.authors.get(pk(article.id), []):
                entry.author(name=_xml(name), email="noreply@invalid")
        body: bytes = feed.rss_str(pretty=False)
        return body

    entry = await _cache(request).fetch("feed.xml", render)
    return cached_response(
        request, entry.body, anonymous=True, media_type="application/rss+xml", etag=entry.etag
    )


@router.get("/sitemap.xml", response_class=XMLResponse)
async def sitemap(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Every live article's URL (no drafts, no scheduled articles before their time)."""

    async def render() -> bytes:
        urlset = ET.Element("urlset", xmlns=SITEMAP_NS)
        async with db.session(write=False) as session:
            entries = await queries.sitemap_entries(session, SITEMAP_LIMIT)
        for slug, updated in entries:
            node = ET.SubElement(urlset, "url")
            ET.SubElement(node, "loc").text = f"{settings.public_url}/{slug}"
            ET.SubElement(node, "lastmod").text = updated.date().isoformat()
        body: bytes = ET.tostring(urlset, encoding="utf-8", xml_declaration=True)
        return body

    entry = await _cache(request).fetch("sitemap.xml", render)
    return cached_response(
        request, entry.body, anonymous=True, media_type="application/xml", etag=entry.etag
    )
