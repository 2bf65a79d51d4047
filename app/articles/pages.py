"""The readers' answers, rendered to bytes on a response-cache miss: the article page, archive
pages, the tag, author and month lists, search, the RSS feed and the sitemap.

Each takes the `Database` (or its direct reads) and opens what it needs only when it runs, so a
cache hit opens nothing. The article page is the fast path: one direct read (`db.reads`) of
the page stored at write time (page_parts), joined with the reader's part.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any
from xml.etree import ElementTree as ET

import orjson
from feedgen.feed import FeedGenerator

from app.access import decision
from app.access.entitlements import Entitlements
from app.access.rules import Visibility
from app.articles import page_parts, presenter, repository, search, search_index, suggest
from app.articles.errors import ArticleMoved, ArticleNotFound
from app.articles.repository import archive, counts
from app.articles.schemas import ArchiveMonth, AuthorCount, ListFilters, TagCount
from app.articles.search import Ask, Position
from app.billing import repository as billing
from app.core.cache import Answer, ResponseCache, article_key, offer_key
from app.core.config import Settings
from app.core.db import Database, Reads, pk, utcnow
from app.core.jsonutil import dumps

FEED_ITEMS = 50
SITEMAP_LIMIT = 50_000  # the sitemap protocol's per-file maximum
SITEMAP_NS = "http://www.sitemaps.org/schemas/sitemap/0.9"
# Characters XML 1.0 does not allow (lxml refuses to write them): text reaches the feed and the
# sitemap only through `xml_text`, so one stored control character cannot break them for everyone.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """Give back `text` without the characters XML 1.0 cannot carry."""
    return _NOT_XML.sub("", text)


Offers = Callable[[frozenset[int] | None], Awaitable[presenter.Offer]]


async def paywall_offer(reads: Reads, tier_ids: frozenset[int] | None) -> presenter.Offer:
    """The tiers on sale among `tier_ids` (None: all) and their plans, for a paywall."""
    return presenter.Offer(*await billing.paywall_offer(reads, tier_ids))


async def article_page(reads: Reads, reader: Entitlements, slug: str, offers: Offers) -> bytes:
    """One live article as `reader` may read it now (`offers` gives a refused reader's
    offer); ArticleMoved for an old slug."""
    found = await repository.live_page(reads, slug)
    if found is None:
        raise ArticleNotFound("No such article.")
    if isinstance(found, str):
        raise ArticleMoved(found)
    rules, tier_slugs = page_parts.decode_rules(found.rules)
    now = utcnow()
    access = decision.decide(rules, reader, now)
    offer = presenter.NO_OFFER
    if not access.granted and access.required != Visibility.members.value:
        offer = await offers(access.tiers or None)
    part = presenter.reader_part(slug, access, reader, offer, found.comment_count, tier_slugs)
    free = rules.required(now) is Visibility.public
    content = found.content if access.granted else None
    return page_parts.assemble(found.head, found.structured, free, content, part)


class ArticleAnswers:
    """An article page's answer for one reader's entitlements: from the response cache, or
    rendered once however many readers miss it together. The route and the before-routing
    middleware both answer through this one object."""

    def __init__(self, cache: ResponseCache, reads: Reads) -> None:
        self.cache, self.reads = cache, reads

    async def offer(self, tier_ids: frozenset[int] | None) -> presenter.Offer:
        """The paywall's offer, kept with the cached answers (plan and tier writes clear
        both): on PostgreSQL it was a second round trip for each refused reader's page."""
        key = offer_key(tier_ids)
        return await self.cache.value(key, partial(paywall_offer, self.reads, tier_ids))

    async def __call__(self, reader: Entitlements, slug: str) -> Answer:
        render = partial(article_page, self.reads, reader, slug, self.offer)
        # The answer depends on the reader only through their entitlements' key, so readers
        # of one key share it and no other ever sees it; an answer that a time rule will
        # change goes when that time comes (core/cache/freshness.py).
        return await self.cache.fetch(article_key(reader.key, slug), render, long_tail=True)


async def archive_page(db: Database, filters: ListFilters, limit: int, cursor: str | None) -> bytes:
    """One page of the archive's teasers, newest first, with the next page's cursor."""
    cards, next_cursor = await archive.archive_cards(db.reads, filters, limit=limit, cursor=cursor)
    return dumps({"items": [orjson.Fragment(c) for c in cards], "next_cursor": next_cursor})


async def tags(db: Database) -> bytes:
    """Tags with their number of live articles."""
    async with db.session(write=False) as session:
        rows = await counts.tags_with_counts(session)
    return dumps([TagCount(slug=s, name=n, articles=c).model_dump() for s, n, c in rows])


async def authors(db: Database) -> bytes:
    """Authors with their number of live articles."""
    async with db.session(write=False) as session:
        rows = await counts.authors_with_counts(session)
    return dumps([AuthorCount(id=i, name=n, articles=c).model_dump() for i, n, c in rows])


async def months(db: Database) -> bytes:
    """Live article counts per year and month, newest first."""
    async with db.session(write=False) as session:
        rows = await counts.archive_months(session)
    return dumps([ArchiveMonth(year=y, month=m, articles=c).model_dump() for y, m, c in rows])


async def search_page(
    db: Database, ask: Ask, readable: list[str], size: int, position: Position
) -> bytes:
    """One page of hits with the total; snippets from the public fields only."""
    words, reads = ask.words, db.search_reads
    found = await search.resolve(reads, ask, readable)
    result = await search.search(reads, found, by_date=ask.by_date, limit=size, position=position)
    cards = await repository.live_cards(
        reads, [search_index.article_id_of(key) for key in result.keys]
    )
    return dumps(
        {
            "items": [_hit(card, words) for card in cards],
            "next_cursor": result.next_cursor,
            "total": result.total,
            "total_capped": result.total_capped,
        }
    )


def _hit(card: bytes, words: list[str]) -> dict[str, object]:
    # The stored card goes out as it is; its standfirst and teaser (public) give the snippet.
    teaser = orjson.loads(card)
    public = " ".join([teaser["subtitle"], teaser["excerpt"]])
    return {"article": orjson.Fragment(card), "snippet": search.highlight(public, words)}


async def suggest_page(db: Database, words: list[str], tags: Any, authors: Any) -> bytes:
    """Type-ahead: titles of live articles, then tags and authors (from their cached lists)
    whose names match; never any text of an article's body."""
    titles: list[dict[str, str]] = []
    if words and len(words[-1]) >= search.PREFIX_MIN:
        titles = await suggest.titles(db.search_reads, words)
    return dumps(
        {
            "titles": titles,
            "tags": suggest.named(tags, words, "slug"),
            "authors": suggest.named(authors, words, "id"),
        }
    )


async def rss_feed(db: Database, settings: Settings) -> bytes:
    """The latest articles as RSS 2.0, teasers only."""
    async with db.session(write=False) as session:
        articles = await repository.latest(session, FEED_ITEMS)
        extra = await repository.extras(session, [a.id for a in articles if a.id is not None])
    feed = FeedGenerator()
    feed.title(xml_text(settings.publication_name))
    feed.link(href=settings.public_url, rel="alternate")
    feed.description(xml_text(settings.publication_description))
    feed.language("en")
    for article in reversed(articles):
        entry = feed.add_entry()
        url = f"{settings.public_url}/{article.slug}"
        entry.guid(url, permalink=True)
        entry.link(href=url)
        entry.title(xml_text(article.title))
        entry.description(xml_text(article.excerpt))
        if article.published_at:
            entry.pubDate(article.published_at)
        for _, name in extra.tags.get(pk(article.id), []):
            entry.category(term=xml_text(name))
        for _, name in extra.authors.get(pk(article.id), []):
            entry.author(name=xml_text(name), email="noreply@invalid")
    body: bytes = feed.rss_str(pretty=False)
    return body


async def sitemap(db: Database, settings: Settings) -> bytes:
    """Every live article's URL (no drafts, no scheduled articles before their time)."""
    urlset = ET.Element("urlset", xmlns=SITEMAP_NS)
    async with db.session(write=False) as session:
        entries = await repository.sitemap_entries(session, SITEMAP_LIMIT)
    for slug, updated in entries:
        node = ET.SubElement(urlset, "url")
        ET.SubElement(node, "loc").text = f"{settings.public_url}/{slug}"
        ET.SubElement(node, "lastmod").text = updated.date().isoformat()
    body: bytes = ET.tostring(urlset, encoding="utf-8", xml_declaration=True)
    return body
