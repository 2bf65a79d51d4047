"""Reader answers already in the response cache, answered before routing.

Most article-page and archive reads find their answer in the response cache; for those,
FastAPI's routing, dependency solving and exception layers cost more than the answer
(py-spy: about half of a cache hit). This middleware answers exactly what the route would,
from the same key (`keys`) and through the same response helper (`http`). Everything else,
misses and errors included, goes on to the route, which stays the one documented, validated
way in: an archive page is only ever cached under a query string the route has validated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.cache.http import entry_response
from app.core.cache.keys import article_key, list_key
from app.core.cache.store import ResponseCache
from app.core.config import API_PREFIX

ARCHIVE = f"{API_PREFIX}/articles"
PREFIX = f"{ARCHIVE}/"
# The caller's access level (0 is anonymous), as the routes work it out.
LevelOf = Callable[[Request], Awaitable[int]]


def _key_of(request: Request, level: int) -> str:
    path: str = request.scope["path"]
    if path == ARCHIVE:
        return list_key(request.url.query)
    return article_key(level, path[len(PREFIX) :])


class CachedReaderAnswers:
    """Serve `GET`/`HEAD` of the archive and of `/articles/{slug}` from the response cache
    when the answer is there."""

    def __init__(self, app: ASGIApp, cache: ResponseCache, level_of: LevelOf) -> None:
        self.app = app
        self.cache = cache
        self.level_of = level_of
        # The routes' own objects by path kind, for access logs and metrics; each learnt
        # from the first miss, which always comes before the first hit.
        self._routes: dict[bool, Any] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
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
        entry = self.cache.get(_key_of(request, level))
        route = self._routes.get(archive)
        if entry is None or route is None:
            await self.app(scope, receive, send)
            if route is None and scope.get("route") is not None:
                self._routes[archive] = scope["route"]
            return
        scope["route"] = route
        await entry_response(request, entry, anonymous=level == 0)(scope, receive, send)
