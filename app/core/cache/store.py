"""A short-lived, in-process store of rendered reader answers.

Keys always carry the reader's access level (an article page, a search) or name answers that
are the same for everyone (archive pages of teasers), so a cached body never reaches a reader
it was not rendered for. Expiry, LRU order and the byte budget are cachetools'; this module
adds compression, single-flight (concurrent misses of one key are rendered once, `fetch`),
admission (an answer is kept from its second miss on) and generations (a render that began
before a `clear` is never stored).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import lz4.block
import xxhash
from cachetools import TTLCache

T = TypeVar("T")
# Small values answers are made of (the paywall's offer per set of tiers): a few at most.
VALUES = 256
# About how many long-tail keys rendered lately are remembered: the next miss of one of
# them keeps its answer.
SEEN_ONCE = 65_536


def etag_of(body: bytes) -> str:
    """A strong validator for `body` (a 128-bit hash: it tells our own answers apart, and no
    one else chooses them)."""
    return '"' + xxhash.xxh3_128_hexdigest(body) + '"'


class Answer(Protocol):
    """A rendered answer's bytes and strong validator, cached or just rendered."""

    @property
    def body(self) -> bytes: ...

    @property
    def etag(self) -> str: ...


@dataclass(frozen=True)
class Rendered:
    """An answer just rendered: served as it is, while its packed copy goes to the store."""

    body: bytes

    @functools.cached_property
    def etag(self) -> str:
        """Hashed on first use: only anonymous answers carry an ETag."""
        return etag_of(self.body)


@dataclass(frozen=True)
class Entry:
    """One cached answer, kept compressed: pages are mostly HTML, which LZ4 packs to under a
    third, so the same memory holds three times the pages. LZ4 because it unpacks a 15 kB
    page in ~3 µs; zlib took ~20 µs, which py-spy put at 30 % of a cached paid page."""

    packed: bytes

    @classmethod
    def of(cls, body: bytes) -> Entry:
        # LZ4's fast mode: its high-compression mode saved a fifth of the bytes but cost 13 %
        # of a request over a long tail of pages, where most entries are never read again.
        return cls(lz4.block.compress(body))

    @property
    def body(self) -> bytes:
        body: bytes = lz4.block.decompress(self.packed)
        return body

    @functools.cached_property
    def etag(self) -> str:
        """Hashed on first use: only anonymous answers carry an ETag."""
        return etag_of(self.body)


def _size(entry: Entry) -> int:
    # The packed bytes are an object of their own size: the store never holds on to orjson's
    # output, whose bytes keep its whole write buffer (~130 kB for a 15 kB page).
    return len(entry.packed)


class ResponseCache:
    """Rendered answers for `ttl_seconds`, within `max_bytes` (article answers run from 1 to
    50 kB, so the budget is in bytes, not entries); a TTL of 0 keeps nothing."""

    def __init__(
        self,
        ttl_seconds: float,
        max_bytes: int = 24 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self.max_bytes = max_bytes
        self._entries: TTLCache[str, Entry] = TTLCache(
            maxsize=max_bytes, ttl=max(ttl_seconds, 0), timer=clock, getsizeof=_size
        )
        self._pending: dict[str, asyncio.Future[Rendered | None]] = {}
        # The keys of long-tail answers rendered lately (their hashes), in two generations.
        self._seen: set[int] = set()
        self._seen_earlier: set[int] = set()
        self._values: TTLCache[str, Any] = TTLCache(VALUES, ttl=max(ttl_seconds, 0), timer=clock)
        # Bumped by clear(): a render that started before a clear may hold stale content.
        self._generation = 0

    def get(self, key: str) -> Entry | None:
        if self.ttl <= 0:
            return None
        return self._entries.get(key)

    def put(self, key: str, body: bytes, *, generation: int | None = None) -> None:
        """Keep `body` under `key`, unless too big or rendered before a clear."""
        if self.ttl <= 0 or (generation is not None and generation != self._generation):
            return
        entry = Entry.of(body)
        if _size(entry) <= self.max_bytes // 16:
            self._entries[key] = entry

    async def fetch(
        self, key: str, render: Callable[[], Awaitable[bytes]], *, long_tail: bool = False
    ) -> Answer:
        """Give back the cached answer, or render it once however many requests miss at once.

        `long_tail` says the key is one of many read rarely (an article page, a search): its
        answer is kept from its second miss on, so the pages read once (most of an archive's)
        never push out the pages read often, and cost no packing or eviction (py-spy: ~10 %
        of a page read over every slug).

        Without this, every expiry of a popular key sent all waiting requests to the database
        together (p99 of 0.5 s on searches). Should the render fail, each waiter renders for
        itself, so an error is never shared. A fresh render is answered from its own bytes,
        never unpacked from the copy just stored.
        """
        if (entry := self.get(key)) is not None:
            return entry
        generation = self._generation
        pending = self._pending.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if shared is not None:
                return shared
            return self._keep(key, await render(), generation, long_tail)
        future: asyncio.Future[Rendered | None] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = self._keep(key, await render(), generation, long_tail)
        except BaseException:
            future.set_result(None)
            raise
        finally:
            del self._pending[key]
        future.set_result(answer)
        return answer

    def _keep(self, key: str, body: bytes, generation: int, long_tail: bool) -> Rendered:
        if self.ttl > 0 and (not long_tail or self._seen_before(key)):
            self.put(key, body, generation=generation)
        return Rendered(body)

    def _seen_before(self, key: str) -> bool:
        # Two generations of key hashes: a set is four times smaller than an ordered dict
        # of the keys, and the older half goes at once.
        seen = hash(key)
        if seen in self._seen or seen in self._seen_earlier:
            return True
        self._seen.add(seen)
        if len(self._seen) >= SEEN_ONCE // 2:
            self._seen_earlier, self._seen = self._seen, set()
        return False

    @property
    def size(self) -> int:
        """The bytes the store holds now."""
        return int(self._entries.currsize)

    async def value(self, key: str, compute: Callable[[], Awaitable[T]]) -> T:
        """A value that answers are rendered from and that changes with content (the plans a
        paywall offers: a database read for each refused reader's page otherwise), kept like
        an answer: for the TTL, dropped by `clear`, and computed afresh when the TTL is 0."""
        if self.ttl <= 0:
            return await compute()
        if key in self._values:
            known: T = self._values[key]
            return known
        generation = self._generation
        computed = await compute()
        if generation == self._generation:
            self._values[key] = computed
        return computed

    def clear(self) -> None:
        self._entries.clear()
        self._values.clear()
        self._generation += 1
