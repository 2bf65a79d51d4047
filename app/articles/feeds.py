"""HTTP for the RSS 2.0 feed and the sitemap: excerpts and links only, never gated text.

Both are the same for every reader and cost a full read to build, so they are answered from
the response cache (cleared by staff writes like every reader answer); pages.py builds them.
"""

from __future__ import annotations

from functools import partial

from fastapi import Request, Response

from app.articles import pages
from app.core.cache import ResponseCache, cached_response
from app.core.deps import DatabaseDep, SettingsDep
from app.core.routing import api_router

router = api_router(tags=["feeds"])


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
    entry = await _cache(request).fetch("feed.xml", partial(pages.rss_feed, db, settings))
    return cached_response(
        request, entry.body, anonymous=True, media_type="application/rss+xml", etag=entry.etag
    )


@router.get("/sitemap.xml", response_class=XMLResponse)
async def sitemap(request: Request, db: DatabaseDep, settings: SettingsDep) -> Response:
    """Every live article's URL (no drafts, no scheduled articles before their time)."""
    entry = await _cache(request).fetch("sitemap.xml", partial(pages.sitemap, db, settings))
    return cached_response(
        request, entry.body, anonymous=True, media_type="application/xml", etag=entry.etag
    )
