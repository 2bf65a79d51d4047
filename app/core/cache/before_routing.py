"""Reader answers served before routing: cached ones, and article pages.

What is served: an article page (cached, or rendered on a miss), a cached archive page, and
whatever an `early` path's domain answers (search and the type-ahead: articles/
search_answers.py), through the same function its route calls.

For an answer the response cache holds, and for an article page rendered on a miss,
FastAPI's routing, dependency solving and exception layers cost about as much as the answer
(py-spy: half of a cache hit, a third of a miss over a long tail of articles). This middleware
answers exactly what the route would: the same key (`keys`), the article page through the
same object the route calls (`article_answer`), and the same response helper (`http`).
Everything else goes on to the route, which stays the one documented, validated way in: an
archive miss (an archive page is only ever cached under a query string the route has
validated), and any failure, which the route meets again and answers as it always does
(an unknown or moved slug, a bad token, an unreachable database).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.cache.http import entry_response
from app.core.cache.keys import list_key
from app.core.cache.store import Answer, ResponseCache
from app.core.config import API_PREFIX

ARCHIVE = f"{API_PREFIX}/articles"
PREFIX = f"{ARCHIVE}/"
# The caller's entitlements (access.entitlements.Entitlements), as the routes work them out;
# `signed_in` is all this module reads of them.
ReaderOf = Callable[[Request], Awaitable[Any]]
# An article page's answer for a reader and a slug, as the route gets it.
ArticleAnswer = Callable[[Any, str], Awaitable[Answer]]


@dataclass(frozen=True)
class Early:
    """A path answered before routing by its domain's function of the request and the
    caller's entitlements: an answer, or None where only the route may answer (a query
    string it would refuse or spell otherwise). `per_reader`: the answer depends on the
    reader, so they are worked out and the headers follow; else it is the same for all."""

    answer: Callable[[Request, Any], Awaitable[Answer | None]]
    per_reader: bool = True


class ReaderAnswersBeforeRouting:
    """Serve `GET`/`HEAD` of `/articles/{slug}` and, when the response cache holds it, of
    the archive; and `GET` of the `early` paths, as their domains answer them."""

    def __init__(
        self,
        app: ASGIApp,
        cache: ResponseCache,
        reader_of: ReaderOf,
        article_answer: ArticleAnswer,
        early: Mapping[str, Early] | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.reader_of = reader_of
        self.article_answer = article_answer
        self.early = early or {}
        # The routes' own objects by path kind (page, archive, or an early path), for access
        # logs and metrics; each learnt from the first miss, which comes before the first hit.
        self._routes: dict[object, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        # GET only: their routes take no HEAD.
        if path in self.early and scope["type"] == "http" and scope["method"] == "GET":
            await self._early(scope, receive, send, path)
            return
        archive = path == ARCHIVE
        page = path.startswith(PREFIX) and "/" not in path[len(PREFIX) :] and path != PREFIX
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            # An article page takes no query parameters: the route refuses any.
            or not (archive or (page and not scope.get("query_string")))
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            reader = await self.reader_of(request)
        except Exception:
            # A bad token or an unreachable database: the route answers it as it always does.
            await self.app(scope, receive, send)
            return
        route = self._routes.get(archive)
        answer = None if route is None else await self._answer(request, reader, archive)
        if answer is None:
            await self.app(scope, receive, send)
            if route is None and scope.get("route") is not None:
                self._routes[archive] = scope["route"]
            return
        scope["route"] = route
        anonymous = not reader.signed_in
        await entry_response(request, answer, anonymous=anonymous)(scope, receive, send)

    async def _early(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        early, request = self.early[path], Request(scope)
        route, reader, answer = self._routes.get(path), None, None
        try:
            if early.per_reader:
                reader = await self.reader_of(request)
            if route is not None:
                answer = await early.answer(request, reader)
        except Exception:
            # A bad token, an unreachable database: the route answers as it always does.
            answer = None
        if answer is None:
            await self.app(scope, receive, send)
            if route is None and scope.get("route") is not None:
                self._routes[path] = scope["route"]
            return
        scope["route"] = route
        anonymous = reader is None or not reader.signed_in
        await entry_response(request, answer, anonymous=anonymous)(scope, receive, send)

    async def _answer(self, request: Request, reader: Any, archive: bool) -> Answer | None:
        if archive:
            return self.cache.get(list_key(request.url.query))
        try:
            return await self.article_answer(reader, request.scope["path"][len(PREFIX) :])
        except Exception:
            return None
