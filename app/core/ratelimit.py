"""Rate limits on top of the `limits` library: in memory by default, Redis when configured."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request

from app.core.config import Settings
from app.core.errors import RateLimited


class RateLimiter:
    """Named limits checked and counted per key (an IP, an account, a reader)."""

    def __init__(self, settings: Settings) -> None:
        uri = settings.rate_limit_storage
        if "://" in uri and not uri.startswith("async+"):
            uri = "async+" + uri
        self._strategy = MovingWindowRateLimiter(storage_from_string(uri))
        self._items: dict[str, RateLimitItem] = {}
        self._trusted_proxies = settings.trusted_proxies

    def _item(self, spec: str) -> RateLimitItem:
        item = self._items.get(spec)
        if item is None:
            item = self._items[spec] = parse(spec)
        return item

    async def check(self, spec: str, *keys: str) -> None:
        """Raise RateLimited if any key has used up `spec` (e.g. "10/15minutes"); counts nothing."""
        item = self._item(spec)
        for key in keys:
            if not await self._strategy.test(item, key):
                raise RateLimited(await self._retry_after(item, key))

    async def hit(self, spec: str, *keys: str) -> None:
        """Count one use against every key; raise RateLimited if any goes over."""
        item = self._item(spec)
        for key in keys:
            if not await self._strategy.hit(item, key):
                raise RateLimited(await self._retry_after(item, key))

    async def _retry_after(self, item: RateLimitItem, key: str) -> int:
        stats = await self._strategy.get_window_stats(item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def client_ip(self, request: Request) -> str:
        """Give back the caller's IP, trusting X-Forwarded-For only behind configured proxies."""
        if self._trusted_proxies:
            forwarded = request.headers.get("x-forwarded-for", "")
            hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
            if len(hops) >= self._trusted_proxies:
                return hops[-self._trusted_proxies]
        return request.client.host if request.client else "unknown"
