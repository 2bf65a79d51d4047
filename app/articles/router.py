"""HTTP for readers: the archive, one article (gated), tags, authors, months, search."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Annotated

from fastapi import Query, Request, Response
from fastapi.responses import RedirectResponse

from app.access.deps import Reader, reader_entitlements
from app.access.entitlements import Entitlements
from app.access.rules import Visibility
from app.articles import pages, search, search_answers
from app.articles.errors import ArticleMoved
from app.articles.schemas import (
    ArchiveMonth,
    ArticlePublic,
    ArticleTeaser,
    AuthorCount,
    ListFilters,
    SearchPage,
    SearchSort,
    Suggestions,
    TagCount,
)
from app.core.cache import (
    Answer,
    ResponseCache,
    cached_response,
    canonical_query,
    entry_response,
    list_key,
)
from app.core.config import API_PREFIX
from app.core.db import Database
from app.core.deps import DatabaseDep
from app.core.errors import InvalidInput
from app.core.fields import Id, UtcDatetime
from app.core.openapi import auth
from app.core.pagination import Cursor, Limit, Page, clamp
from app.core.routing import api_router

router = api_router(prefix=API_PREFIX, tags=["articles"])


def _cache(request: Request) -> ResponseCache:
    cache: ResponseCache = request.app.state.response_cache
    return cache


def _answer(request: Request, entry: Answer, reader: Entitlements) -> Response:
    return entry_response(request, entry, anonymous=not reader.signed_in)


_PAGE = {"model": Page[ArticleTeaser]}
Render = Callable[[Database], Awaitable[bytes]]


@router.get("/articles", response_model=Page[ArticleTeaser], responses={200: _PAGE})
@router.head("/articles", include_in_schema=False)
async def list_articles(
    request: Request,
    db: DatabaseDep,
    reader: Reader,
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
    filters = ListFilters(
        tag=tag,
        author=author,
        visibility=visibility.value if visibility else None,
        year=year,
        month=month,
        since=since,
        until=until,
    )
    # Stored under the canonical spelling; the cached-answers middleware finds it for a
    # request that spells its query that way (the route finds it for any other spelling).
    query = canonical_query(
        [("limit", clamp(limit)), ("cursor", cursor), ("tag", tag), ("author", author),
         ("visibility", filters.visibility), ("year", year), ("month", month),
         ("from", since), ("to", until)]
    )  # fmt: skip
    render = partial(pages.archive_page, db, filters, clamp(limit), cursor)
    entry = await _cache(request).fetch(list_key(query), render)
    return _answer(request, entry, reader)


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
    reader = await reader_entitlements(request)
    answers: pages.ArticleAnswers = request.app.state.article_answers
    try:
        answer = await answers(reader, slug)
    except ArticleMoved as moved:
        return RedirectResponse(f"{API_PREFIX}/articles/{moved.slug}", status_code=301)
    return _answer(request, answer, reader)


async def _shared(request: Request, db: Database, key: str, render: Render) -> Response:
    """An answer that is the same for every reader, from the response cache."""
    entry = await _cache(request).fetch(key, partial(render, db))
    return cached_response(request, entry.body, anonymous=True, etag=entry.etag)


@router.get("/tags", response_model=list[TagCount])
async def list_tags(request: Request, db: DatabaseDep) -> Response:
    """Tags with their number of published articles."""
    return await _shared(request, db, "tags", pages.tags)


@router.get("/authors", response_model=list[AuthorCount])
async def list_authors(request: Request, db: DatabaseDep) -> Response:
    """Authors with their number of published articles."""
    return await _shared(request, db, "authors", pages.authors)


@router.get("/archive", response_model=list[ArchiveMonth])
async def archive(request: Request, db: DatabaseDep) -> Response:
    """Published article counts per year and month, newest first."""
    return await _shared(request, db, "archive", pages.months)


# Search (issue 18)


@router.get("/search", response_model=SearchPage)
async def search_articles(
    request: Request,
    reader: Reader,
    q: Annotated[str, Query(min_length=1, max_length=search_answers.SEARCH_MAX)],
    limit: Limit = search_answers.DEFAULT_LIMIT,
    cursor: Cursor = None,
    sort: SearchSort = SearchSort.relevance,
    tag: Annotated[str | None, Query(max_length=100)] = None,
    author: Id | None = None,
    since: Annotated[UtcDatetime | None, Query(alias="from")] = None,
    until: Annotated[UtcDatetime | None, Query(alias="to")] = None,
) -> Response:
    """Search live articles by title, text, tag and author names: every word must match,
    stemmed, the last one also as a prefix. Readers match the full text only of articles
    they may read; snippets come from the standfirst and teaser. `sort=relevance` puts title
    matches first, then the public text, then the rest, newest first within each, and ends
    after 300 results (a cursor past them: 400 `search_page_out_of_range`); `sort=date`
    pages through every match. `total` counts up to 1,000 (`total_capped` beyond)."""
    answer = await search_answers.search_answer(
        request, reader, q, limit=limit, cursor=cursor, sort=sort, tag=tag, author=author,
        since=since, until=until,
    )  # fmt: skip
    return _answer(request, answer, reader)


@router.get("/search/suggest", response_model=Suggestions)
async def suggest_search(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=search_answers.SUGGEST_MAX)],
) -> Response:
    """Type-ahead: up to 5 titles of live articles (newest first), tags and authors whose
    names match what was typed, the last word as a prefix. Never any text of a body."""
    answer = await search_answers.suggest_answer(request, search.terms(q))
    return cached_response(request, answer.body, anonymous=True, etag=answer.etag)
