"""A short-lived, in-process cache of rendered anonymous responses.

Only answers for anonymous readers are stored (they depend on nothing but the content), so a
cached body can never carry text a reader may not see. Staff writes clear it at once in the
process that made them; other worker processes catch up within the TTL, which is far shorter
than the `max-age` shared caches are already allowed.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class Entry:
    body: bytes
    expires: float


class ResponseCache:
    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[str, Entry] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires < time.monotonic():
            self._entries.pop(key, None)
            return None
        self._entries.move_to_end(key)
        return entry.body

    def put(self, key: str, body: bytes) -> None:
        if self.ttl <= 0:
            return
        self._entries[key] = Entry(body, time.monotonic() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()
