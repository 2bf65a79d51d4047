"""Rate limits on top of the `limits` library: in memory by default, Redis when configured."""

from __future__ import annotations

import ipaddress
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage as AsyncStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string
from starlette.requests import Request

from app.core.config import ConfigError, Settings
from app.core.errors import RateLimited


class RateLimiter:
    """Named limits checked and counted per key (an IP, an account, a reader)."""

    def __init__(self, settings: Settings) -> None:
        self._strategy = MovingWindowRateLimiter(build_storage(settings.rate_limit_storage))
        self._items: dict[str, RateLimitItem] = {}
        self._trusted_proxies = settings.trusted_proxies
        self._proxy_networks = tuple(settings.proxy_networks)

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

    async def check_account(self, spec: str, account: str, caller: str) -> None:
        """Raise RateLimited when the `account` key has used up `spec` and the `caller` key
        (this account from this network) has failed on it in the window too.

        A locked account still lets in an owner who has not failed from where they are, so
        failures from elsewhere cannot lock them out; every caller who has failed stays out.
        """
        item = self._item(spec)
        if await self._strategy.test(item, account):
            return
        stats = await self._strategy.get_window_stats(item, caller)
        if stats.remaining < item.amount:
            raise RateLimited(await self._retry_after(item, account))

    async def _retry_after(self, item: RateLimitItem, key: str) -> int:
        stats = await self._strategy.get_window_stats(item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def client_ip(self, request: Request) -> str:
        """Give back the caller's IP, read from X-Forwarded-For only as told by trusted proxies.

        Walking from the direct peer, each hop that is a configured proxy may name the one
        before it, up to `trusted_proxies` hops; the first address that is not a proxy, or the
        last one the proxies vouch for, is the client.
        """
        address = request.client.host if request.client else "unknown"
        if not self._trusted_proxies or not self._proxy_networks:
            return address
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        for _ in range(self._trusted_proxies):
            if not hops or not self._is_proxy(address):
                break
            address = hops.pop()
        return address

    def client_key(self, request: Request) -> str:
        """Give back the rate-limit key of the caller's address (see `ip_key`)."""
        return self.ip_key(self.client_ip(request))

    def mail_keys(self, action: str, ip: str, email: str) -> tuple[str, str]:
        """Give back the keys of a mail-sending `action`: the caller's network and the mailbox."""
        return f"{action}:ip:{self.ip_key(ip)}", f"{action}:email:{self.mailbox_key(email)}"

    def _is_proxy(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._proxy_networks)

    @staticmethod
    def ip_key(ip: str) -> str:
        """Give back the rate-limit key of an address: IPv4 itself, IPv6 its /64."""
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return ip
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                return str(address.ipv4_mapped)
            # One subscriber line or host gets a whole /64: counting per address would give
            # them 2**64 fresh budgets.
            return str(ipaddress.IPv6Network((address.packed, 64), strict=False))
        return str(address)

    @staticmethod
    def mailbox_key(email: str) -> str:
        """Give back the rate-limit key of an address: lower case, `+tag` dropped from the local
        part, so `Victim+1@…` and `victim+2@…` share the one mailbox's budget."""
        local, at, domain = email.strip().lower().rpartition("@")
        if not at:
            return domain
        return f"{local.split('+', 1)[0] or local}@{domain}"


def build_storage(uri: str) -> AsyncStorage:
    """Give back the async `limits` storage for a URI (`memory://`, `redis://host:port`, ...)."""
    if "://" in uri and not uri.startswith("async+"):
        uri = "async+" + uri
    # limits' async Redis defaults to coredis; redis-py is the better kept client. Errors of
    # the store come wrapped as StorageError, which the app answers with 503.
    options: dict[str, float | str | bool] = {"wrap_exceptions": True}
    if uri.startswith("async+redis"):
        options["implementation"] = "redispy"
    storage = storage_from_string(uri, **options)
    if not isinstance(storage, AsyncStorage):
        raise ConfigError(f"BROADSHEET_RATE_LIMIT_STORAGE={uri!r} has no asyncio storage")
    return storage
