"""RSS 2.0 feed and sitemap: excerpts and links only, never gated text."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from fastapi import APIRouter, Request, Response
from feedgen.feed import FeedGenerator

from app.articles import queries
from app.core.caching import cached_response
from app.core.db import pk
from app.core.deps import SessionDep, SettingsDep

router = APIRouter(tags=["feeds"])

FEED_ITEMS = 50
SITEMAP_LIMIT = 50_000  # the sitemap protocol's per-file maximum
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"


@router.get("/feed.xml", response_class=Response)
async def rss(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """The latest articles as RSS 2.0, with teasers only."""
    articles = await queries.latest(session, FEED_ITEMS)
    extra = await queries.extras(session, [a.id for a in articles if a.id is not None])
    feed = FeedGenerator()
    feed.title(settings.publication_name)
    feed.link(href=settings.public_url, rel="alternate")
    feed.description(settings.publication_description)
    feed.language("en")
    for article in reversed(articles):
        entry = feed.add_entry()
        url = f"{settings.public_url}/{article.slug}"
        entry.guid(url, permalink=True)
        entry.link(href=url)
        entry.title(article.title)
        entry.description(article.excerpt)
        if article.published_at:
            entry.pubDate(article.published_at)
        for _, name in extra.tags.get(pk(article.id), []):
            entry.category(term=name)
        for _, name in extra.authors.get(pk(article.id), []):
            entry.author(name=name, email="noreply@invalid")
    body = feed.rss_str(pretty=False)
    return cached_response(request, body, anonymous=True, media_type="application/rss+xml")


@router.get("/sitemap.xml", response_class=Response)
async def sitemap(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """Every live article's URL (no drafts, no scheduled articles before their time)."""
    urlset = ET.Element("urlset", xmlns=SITEMAP_NS)
    for slug, updated in await queries.sitemap_entries(session, SITEMAP_LIMIT):
        node = ET.SubElement(urlset, "url")
        ET.SubElement(node, "loc").text = f"{settings.public_url}/{slug}"
        ET.SubElement(node, "lastmod").text = updated.date().isoformat()
    body = ET.tostring(urlset, encoding="utf-8", xml_declaration=True)
    return cached_response(request, body, anonymous=True, media_type="application/xml")
