"""HTTP for readers: the archive, one article (gated), tags, authors, months, search."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, cast

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from app.access import decision
from app.access.deps import ReaderLevel, reader_level
from app.access.levels import AccessLevel
from app.articles import presenter, queries, search
from app.articles import reads as article_reads
from app.articles.errors import ArticleNotFound
from app.articles.models import Visibility
from app.articles.schemas import (
    ArchiveMonth,
    ArticlePublic,
    ArticleTeaser,
    AuthorCount,
    SearchHit,
    TagCount,
)
from app.core.cache import (
    Entry,
    ResponseCache,
    article_key,
    cached_response,
    canonical_query,
    entry_response,
    list_key,
    search_key,
)
from app.core.config import API_PREFIX, Settings
from app.core.db import Database, Reads, pk
from app.core.deps import DatabaseDep
from app.core.errors import InvalidInput
from app.core.fields import Id, UtcDatetime
from app.core.jsonutil import dumps
from app.core.openapi import auth
from app.core.pagination import Cursor, Limit, Page, clamp, decode_cursor, encode_cursor
from app.core.routing import api_router

router = api_router(prefix=API_PREFIX, tags=["articles"])


def _cache(request: Request) -> ResponseCache:
    cache: ResponseCache = request.app.state.response_cache
    return cache


def _answer(request: Request, entry: Entry, level: AccessLevel) -> Response:
    return entry_response(request, entry, anonymous=level is AccessLevel.anonymous)


_PAGE = {"model": Page[ArticleTeaser]}
Reader = Callable[[AsyncSession], Awaitable[list[dict[str, object]]]]


class _Moved(Exception):
    """An old slug: the page answers with a redirect instead of a body."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug


@router.get("/articles", response_model=Page[ArticleTeaser], responses={200: _PAGE})
@router.head("/articles", include_in_schema=False)
async def list_articles(
    request: Request,
    db: DatabaseDep,
    level: ReaderLevel,
    limit: Limit = 20,
    cursor: Cursor = None,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    author: Id | None = None,
    visibility: Visibility | None = None,
    year: Annotated[int | None, Query(ge=1900, le=2200)] = None,
    month: Annotated[int | None, Query(ge=1, le=12)] = None,
    since: Annotated[UtcDatetime | None, Query(alias="from")] = None,
    until: Annotated[UtcDatetime | None, Query(alias="to")] = None,
) -> Response:
    """Published articles, newest first, with cursor pagination (teasers only, never gated text)."""
    if month is not None and year is None:
        raise InvalidInput("Give a year with the month.", code="month_without_year")
    # Teasers are the same for every reader, so one cached page serves them all.
    filters = queries.ListFilters(
        tag=tag,
        author=author,
        visibility=visibility.value if visibility else None,
        year=year,
        month=month,
        since=since,
        until=until,
    )

    async def render() -> bytes:
        async with db.session(write=False) as session:
            articles, next_cursor = await queries.list_published(
                session, filters, limit=clamp(limit), cursor=cursor
            )
            extra = await queries.extras(session, [pk(a.id) for a in articles])
        items = [presenter.teaser(a, *extra.of(pk(a.id))) for a in articles]
        return dumps({"items": items, "next_cursor": next_cursor})

    # Stored under the canonical spelling; the cached-answers middleware finds it for a
    # request that spells its query that way (the route finds it for any other spelling).
    query = canonical_query(
        [("limit", clamp(limit)), ("cursor", cursor), ("tag", tag), ("author", author),
         ("visibility", filters.visibility), ("year", year), ("month", month),
         ("from", since), ("to", until)]
    )  # fmt: skip
    entry = await _cache(request).fetch(list_key(query), render)
    return _answer(request, entry, level)


@router.head("/articles/{slug}", include_in_schema=False)
@router.get(
    "/articles/{slug}",
    response_model=ArticlePublic,
    responses={200: {"model": ArticlePublic}, 301: {"description": "The slug changed"}},
)
@auth("optional")
async def get_article(slug: str, request: Request) -> Response:
    """One article: the full text for readers with access, else the free part and a paywall."""
    # The busiest route takes only `request`: each FastAPI dependency costs per request.
    level = await reader_level(request)
    reads: Reads = request.app.state.db.reads
    settings: Settings = request.app.state.settings

    async def render() -> bytes:
        found = await article_reads.live_article(reads, slug)
        if found is None:
            raise ArticleNotFound("No such article.")
        if isinstance(found, str):
            raise _Moved(found)
        access = decision.decide(found.visibility, level)
        plans: list[dict[str, object]] = []
        if not access.granted and found.visibility == Visibility.paid.value:
            plans = await article_reads.plans_on_sale(reads)
        page = presenter.full(
            found,
            found.authors,
            found.tags,
            access,
            level,
            content_html=found.content_html,
            public_url=settings.public_url,
            plans=plans,
            comment_count=found.comment_count,
        )
        return dumps(page)

    # The answer depends on the reader only through their access level, so it is cached per
    # level: readers of one level share it, and no level ever sees another's.
    try:
        entry = await _cache(request).fetch(article_key(level, slug), render)
    except _Moved as moved:
        return RedirectResponse(f"{API_PREFIX}/articles/{moved.slug}", status_code=301)
    return _answer(request, entry, level)


async def _shared(request: Request, db: Database, key: str, read: Reader) -> Response:
    """An answer that is the same for every reader, from the response cache."""

    async def render() -> bytes:
        async with db.session(write=False) as session:
            return dumps(await read(session))

    entry = await _cache(request).fetch(key, render)
    return cached_response(request, entry.body, anonymous=True, etag=entry.etag)


@router.get("/tags", response_model=list[TagCount])
async def list_tags(request: Request, db: DatabaseDep) -> Response:
    """Tags with their number of published articles."""

    async def read(session: AsyncSession) -> list[dict[str, object]]:
        rows = await queries.tags_with_counts(session)
        return [TagCount(slug=s, name=n, articles=c).model_dump() for s, n, c in rows]

    return await _shared(request, db, "tags", read)


@router.get("/authors", response_model=list[AuthorCount])
async def list_authors(request: Request, db: DatabaseDep) -> Response:
    """Authors with their number of published articles."""

    async def read(session: AsyncSession) -> list[dict[str, object]]:
        rows = await queries.authors_with_counts(session)
        return [AuthorCount(id=i, name=n, articles=c).model_dump() for i, n, c in rows]

    return await _shared(request, db, "authors", read)


@router.get("/archive", response_model=list[ArchiveMonth])
async def archive(request: Request, db: DatabaseDep) -> Response:
    """Published article counts per year and month, newest first."""

    async def read(session: AsyncSession) -> list[dict[str, object]]:
        rows = await queries.archive_months(session)
        return [ArchiveMonth(year=y, month=m, articles=c).model_dump() for y, m, c in rows]

    return await _shared(request, db, "archive", read)


@router.get("/search", response_model=Page[SearchHit])
async def search_articles(
    request: Request,
    db: DatabaseDep,
    level: ReaderLevel,
    q: Annotated[str, Query(min_length=1, max_length=200)],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Response:
    """Ranked search. Gated articles match and show snippets only from their public parts."""
    words = search.terms(q)
    size = clamp(limit)
    offset = 0
    if cursor:
        (offset_value,) = decode_cursor(cursor, (int,))
        offset = max(0, min(cast(int, offset_value), 10_000))
    readable = decision.accessible_visibilities(level)

    async def render() -> bytes:
        async with db.session(write=False) as session:
            found = await search.search_ids(session, words, readable, limit=size + 1, offset=offset)
            snippets = dict(found[:size])
            articles = await queries.by_ids(session, [article_id for article_id, _ in found[:size]])
            extra = await queries.extras(session, [pk(a.id) for a in articles])
        hits = [
            {
                "article": presenter.teaser(article, *extra.of(pk(article.id))),
                "snippet": snippets.get(pk(article.id))
                or search.highlight(" ".join([article.subtitle, article.excerpt]), words),
            }
            for article in articles
        ]
        more = len(found) > size
        return dumps({"items": hits, "next_cursor": encode_cursor(offset + size) if more else None})

    # Results depend on the words and the reader's level only: cached like article pages.
    key = search_key(level, size, offset, words)
    return _answer(request, await _cache(request).fetch(key, render), level)
