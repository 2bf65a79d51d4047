"""The response cache: expiry, byte bound, clearing."""

from __future__ import annotations

from app.core.response_cache import ResponseCache, etag_of


def test_entries_expire_are_bounded_by_bytes_and_clear() -> None:
    now = [1000.0]
    cache = ResponseCache(ttl_seconds=5, max_bytes=1600, clock=lambda: now[0])
    cache.put("a", b"x" * 100)
    now[0] += 4.9
    hit = cache.get("a")
    assert hit is not None and hit.body == b"x" * 100 and hit.etag == etag_of(b"x" * 100)
    now[0] += 0.2
    assert cache.get("a") is None
    cache = ResponseCache(ttl_seconds=60, max_bytes=1600)
    for key in "abcdefghijklmnopq":
        cache.put(key, b"y" * 100)
    assert cache.get("a") is None and (q := cache.get("q")) is not None and q.body == b"y" * 100
    cache.put("huge", b"z" * 1000)  # over a sixteenth of the budget: never stored
    assert cache.get("huge") is None
    cache.clear()
    assert cache.get("q") is None
    assert ResponseCache(ttl_seconds=0).get("a") is None
