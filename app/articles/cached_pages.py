"""Article pages already rendered for the caller's access level, answered before routing.

Most article reads find their page in the response cache; for those, FastAPI's routing,
dependency solving and exception layers cost more than the answer (py-spy: about half of a
cache hit). This middleware answers exactly what the route would, from the same cache entry
and through the same response helper; everything else, misses and errors included, goes on
to the route, which stays the one documented, validated way in.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from app.articles.router import answer, article_key
from app.billing.deps import calling_reader_level
from app.core.config import API_PREFIX
from app.core.response_cache import ResponseCache

PREFIX = f"{API_PREFIX}/articles/"


class CachedArticlePages:
    """Serve `GET`/`HEAD /articles/{slug}` from the response cache when the page is there."""

    def __init__(self, app: ASGIApp, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache
        # The route's own object, for access logs and metrics; learnt from the first miss,
        # which always comes before the first hit.
        self._route: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or not path.startswith(PREFIX)
            or "/" in (slug := path[len(PREFIX) :])
            or not slug
        ):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            level = await calling_reader_level(request)
        except Exception:
            # A bad token or an unreachable database: the route answers it as it always does.
            await self.app(scope, receive, send)
            return
        entry = self.cache.get(article_key(level, slug))
        if entry is None or self._route is None:
            await self.app(scope, receive, send)
            self._route = self._route or scope.get("route")
            return
        scope["route"] = self._route
        await answer(request, entry, level)(scope, receive, send)
