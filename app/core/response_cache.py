"""A short-lived, in-process cache of rendered anonymous responses.

Only answers for anonymous readers are stored (they depend on nothing but the content), so a
cached body can never carry text a reader may not see. Staff writes clear it at once in the
process that made them; other worker processes catch up within the TTL, which is far shorter
than the `max-age` shared caches are already allowed.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


def etag_of(body: bytes) -> str:
    """A strong validator for `body`."""
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


@dataclass(frozen=True)
class Entry:
    body: bytes
    etag: str
    expires: float


class ResponseCache:
    def __init__(
        self,
        ttl_seconds: float,
        max_bytes: int = 32 * 1024 * 1024,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl_seconds
        self._clock = clock
        self.max_bytes = max_bytes
        self._bytes = 0
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def get(self, key: str) -> Entry | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < self._clock():
            self._drop(key)
            return None
        self._entries.move_to_end(key)
        return entry

    def put(self, key: str, body: bytes) -> Entry:
        """Keep `body` under `key` (unless too big) and give back its entry, ETag included."""
        entry = Entry(body, etag_of(body), self._clock() + self.ttl)
        if self.ttl <= 0 or len(body) > self.max_bytes // 16:
            return entry
        self._drop(key)
        self._entries[key] = entry
        self._bytes += len(body)
        # Bounded by bytes, not entries: article answers run from 1 to 50 kB.
        while self._bytes > self.max_bytes and self._entries:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= len(oldest.body)
        return entry

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= len(entry.body)

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0
