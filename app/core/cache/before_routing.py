"""Reader answers served before routing: cached ones, and article pages.

What is served: an article page (cached, or rendered on a miss), a cached archive page, and
a cached answer that is the same for every reader under a key its domain names
(`shared`, e.g. the type-ahead's).

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
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.cache.http import entry_response
from app.core.cache.keys import list_key
from app.core.cache.store import Answer, ResponseCache
from app.core.config import API_PREFIX

ARCHIVE = f"{API_PREFIX}/articles"
PREFIX = f"{ARCHIVE}/"
# The caller's access level (0 is anonymous), as the routes work it out.
LevelOf = Callable[[Request], Awaitable[int]]
# An article page's answer for a level and a slug, as the route gets it.
ArticleAnswer = Callable[[Any, str], Awaitable[Answer]]
# The cache key a route answers a request from, or None where only the route may answer it
# (a query string it would refuse or spell otherwise).
SharedKey = Callable[[Request], str | None]


class ReaderAnswersBeforeRouting:
    """Serve `GET`/`HEAD` of `/articles/{slug}`, and of the archive and the `shared` paths
    when the response cache holds the answer."""

    def __init__(
        self,
        app: ASGIApp,
        cache: ResponseCache,
        level_of: LevelOf,
        article_answer: ArticleAnswer,
        shared: Mapping[str, SharedKey] | None = None,
    ) -> None:
        self.app = app
        self.cache = cache
        self.level_of = level_of
        self.article_answer = article_answer
        self.shared = shared or {}
        # The routes' own objects by path kind (page, archive, or a shared path), for access
        # logs and metrics; each learnt from the first miss, which comes before the first hit.
        self._routes: dict[object, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if path in self.shared and scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            await self._shared(scope, receive, send, path)
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
            level = await self.level_of(request)
        except Exception:
            # A bad token or an unreachable database: the route answers it as it always does.
            await self.app(scope, receive, send)
            return
        route = self._routes.get(archive)
        answer = None if route is None else await self._answer(request, level, archive)
        if answer is None:
            await self.app(scope, receive, send)
            if route is None and scope.get("route") is not None:
                self._routes[archive] = scope["route"]
            return
        scope["route"] = route
        await entry_response(request, answer, anonymous=level == 0)(scope, receive, send)

    async def _shared(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        # The same for every reader: no access level to work out, anonymous headers always.
        route = self._routes.get(path)
        key = self.shared[path](Request(scope)) if route is not None else None
        answer = self.cache.get(key) if key is not None else None
        if answer is None:
            await self.app(scope, receive, send)
            if route is None and scope.get("route") is not None:
                self._routes[path] = scope["route"]
            return
        scope["route"] = route
        await entry_response(Request(scope), answer, anonymous=True)(scope, receive, send)

    async def _answer(self, request: Request, level: int, archive: bool) -> Answer | None:
        if archive:
            return self.cache.get(list_key(request.url.query))
        try:
            return await self.article_answer(level, request.scope["path"][len(PREFIX) :])
        except Exception:
            return None
