"""The search and type-ahead answers, as their routes and the before-routing middleware both
give them (core/cache/before_routing.py).

Routing, query validation and dependency solving cost about half of a search answered on a
cache miss (py-spy, bench 4d), so a request the routes would take as it is, with only `q`,
is answered before routing through the same functions; any other goes on to its route.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial

import orjson
from starlette.requests import Request

from app.access import decision
from app.access.entitlements import Entitlements
from app.articles import pages, search
from app.articles.schemas import SearchSort
from app.core.cache import Answer, ResponseCache, canonical_query
from app.core.cache.keys import search_key, suggest_key
from app.core.db import Database
from app.core.pagination import clamp

SEARCH_MAX = 200
SUGGEST_MAX = 100
DEFAULT_LIMIT = 20


def _cache(request: Request) -> ResponseCache:
    cache: ResponseCache = request.app.state.response_cache
    return cache


async def search_answer(
    request: Request,
    reader: Entitlements,
    q: str,
    *,
    limit: int = DEFAULT_LIMIT,
    cursor: str | None = None,
    sort: SearchSort = SearchSort.relevance,
    tag: str | None = None,
    author: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Answer:
    """One page of a search for `reader`, from the response cache or rendered; the
    parameters are the route's, validated."""
    ask = search.Ask(
        words=search.terms(q),
        by_date=sort is SearchSort.date,
        tag=tag,
        author=author,
        since=since,
        until=until,
    )
    size = clamp(limit)
    position = search.read_cursor(cursor, by_date=ask.by_date)
    readable = decision.readable(reader)
    db: Database = request.app.state.db
    render = partial(pages.search_page, db, ask, readable, size, position)
    # Results depend on the query and on what the reader may match only.
    query = canonical_query(
        [("q", " ".join(ask.words)), ("limit", size), ("cursor", cursor), ("sort", sort.value),
         ("tag", tag), ("author", author), ("from", since), ("to", until)]
    )  # fmt: skip
    key = search_key(",".join(readable), query)
    return await _cache(request).fetch(key, render, long_tail=True)


def _only_q(request: Request, longest: int) -> str | None:
    # The one query string both ways answer alike: a single `q` the route would accept.
    params = request.query_params
    if [name for name, _ in params.multi_items()] != ["q"]:
        return None
    q = params["q"]
    return q if 1 <= len(q) <= longest else None


async def search_before_routing(request: Request, reader: Entitlements) -> Answer | None:
    """The search answer of a request with only `q`, or None (the route answers it)."""
    q = _only_q(request, SEARCH_MAX)
    return None if q is None else await search_answer(request, reader, q)


async def suggest_answer(request: Request, words: list[str]) -> Answer:
    """Type-ahead suggestions for `words`, the same for every reader, cached."""
    cache, db = _cache(request), request.app.state.db

    async def render() -> bytes:
        tags = orjson.loads((await cache.fetch("tags", partial(pages.tags, db))).body)
        authors = orjson.loads((await cache.fetch("authors", partial(pages.authors, db))).body)
        return await pages.suggest_page(db, words, tags, authors)

    return await cache.fetch(suggest_key(words), render)


async def suggest_before_routing(request: Request, _reader: object) -> Answer | None:
    """The type-ahead answer of a request with only `q`, if cached, or None."""
    q = _only_q(request, SUGGEST_MAX)
    return None if q is None else _cache(request).get(suggest_key(search.terms(q)))
