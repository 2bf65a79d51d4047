"""The response cache: expiry, byte bound, clearing."""

from __future__ import annotations

import asyncio
import random
import tracemalloc
from collections.abc import Awaitable, Callable

import pytest

from app.core.cache import ResponseCache, etag_of, store
from app.core.jsonutil import dumps


def test_entries_expire_are_bounded_by_bytes_and_clear() -> None:
    now = [1000.0]
    cache = ResponseCache(ttl_seconds=5, max_bytes=1600, clock=lambda: now[0])
    cache.put("a", b"x" * 100)
    now[0] += 4.9
    hit = cache.get("a")
    assert hit is not None and hit.body == b"x" * 100 and hit.etag == etag_of(b"x" * 100)
    now[0] += 0.2
    assert cache.get("a") is None
    cache = ResponseCache(ttl_seconds=60, max_bytes=2000)
    noise = random.Random(9)  # bytes that do not pack: the budget counts what is kept
    bodies = {key: noise.randbytes(100) for key in "abcdefghijklmnopqrst"}
    for key, body in bodies.items():
        cache.put(key, body)
    assert cache.get("a") is None and (t := cache.get("t")) is not None and t.body == bodies["t"]
    cache.put("huge", noise.randbytes(1000))  # over a sixteenth of the budget: never stored
    assert cache.get("huge") is None
    cache.clear()
    assert cache.get("t") is None
    assert ResponseCache(ttl_seconds=0).get("a") is None


def test_pages_are_kept_packed_and_counted_by_their_packed_size() -> None:
    cache = ResponseCache(ttl_seconds=60, max_bytes=16 * 1024)
    page = b"<p>" + b"The quick brown fox jumps over the lazy dog. " * 20 + b"</p>"
    for n in range(40):  # 40 pages of 900 bytes: more than the 16 kB budget unpacked
        cache.put(f"page{n}", page)
    kept = [n for n in range(40) if cache.get(f"page{n}") is not None]
    assert kept == list(range(40))
    entry = cache.get("page0")
    assert entry is not None and entry.body == page and len(entry.packed) < len(page) // 4


class HeldRender:
    """A render that waits for `gate`, counts its calls, then answers or fails."""

    def __init__(self, outcome: bytes | Exception) -> None:
        self.outcome = outcome
        self.calls = 0
        self.gate = asyncio.Event()

    async def __call__(self) -> bytes:
        self.calls += 1
        await self.gate.wait()
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome


async def test_concurrent_misses_render_once() -> None:
    cache = ResponseCache(ttl_seconds=60)
    render = HeldRender(b"page")
    waiting = [asyncio.create_task(cache.fetch("k", render)) for _ in range(10)]
    await asyncio.sleep(0)
    render.gate.set()
    entries = await asyncio.gather(*waiting)
    assert render.calls == 1
    assert {e.body for e in entries} == {b"page"}


async def test_a_failed_render_is_not_shared_and_not_stored() -> None:
    cache = ResponseCache(ttl_seconds=60)
    render = HeldRender(LookupError("gone"))
    waiting = [asyncio.create_task(cache.fetch("k", render)) for _ in range(3)]
    await asyncio.sleep(0)
    render.gate.set()
    results = await asyncio.gather(*waiting, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert render.calls == 3  # the first render, then each waiter on its own
    assert cache.get("k") is None


async def test_a_render_started_before_a_clear_is_not_kept() -> None:
    """A staff write clears the cache while a reader's render is in flight: the render may
    hold the old content, so it answers that one request but is not stored."""
    cache = ResponseCache(ttl_seconds=60)
    render = HeldRender(b"old")
    task = asyncio.create_task(cache.fetch("k", render))
    await asyncio.sleep(0)
    cache.clear()
    render.gate.set()
    assert (await task).body == b"old"
    assert cache.get("k") is None


async def test_a_long_tail_answer_is_kept_from_its_second_miss(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(store, "SEEN_ONCE", 4)
    cache = ResponseCache(ttl_seconds=60)
    renders: list[str] = []

    def render(key: str) -> Callable[[], Awaitable[bytes]]:
        async def rendered() -> bytes:
            renders.append(key)
            return key.encode()

        return rendered

    for key in ("a", "a", "a", "shared", "shared"):
        long_tail = key != "shared"
        assert (await cache.fetch(key, render(key), long_tail=long_tail)).body == key.encode()
    assert renders == ["a", "a", "shared"]  # kept at its second miss; a shared one at once
    # Only the last SEEN_ONCE keys or so rendered once are remembered.
    for key in ("b", "c", "d", "e", "b"):
        await cache.fetch(key, render(key), long_tail=True)
    assert cache.get("b") is None and renders[-1] == "b"
    await cache.fetch("e", render("e"), long_tail=True)
    assert cache.get("e") is not None
    assert ResponseCache(ttl_seconds=0).get("a") is None


def test_cached_bodies_cost_their_size_not_the_encoders_buffer() -> None:
    """orjson's output keeps its whole write buffer; the cache keeps exact copies."""
    cache = ResponseCache(ttl_seconds=60, max_bytes=64 * 1024 * 1024)
    page = {"content_html": "<p>" + "x" * 15_000 + "</p>", "tags": list(range(50))}
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(50):
            cache.put(f"page{n}", dumps(page))
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < 50 * 20_000, grown


async def test_values_are_kept_like_answers() -> None:
    now = [1000.0]
    cache = ResponseCache(ttl_seconds=5, clock=lambda: now[0])
    computed: list[int] = []

    async def compute() -> int:
        computed.append(1)
        return len(computed)

    assert [await cache.value("offer", compute) for _ in range(3)] == [1, 1, 1]
    cache.clear()  # a plan or tier write
    assert await cache.value("offer", compute) == 2
    now[0] += 5.1
    assert await cache.value("offer", compute) == 3
    assert [await ResponseCache(ttl_seconds=0).value("offer", compute) for _ in range(2)] == [4, 5]


async def test_a_value_computed_across_a_clear_is_not_kept() -> None:
    cache = ResponseCache(ttl_seconds=60)
    gate, calls = asyncio.Event(), [0]

    async def compute() -> str:
        calls[0] += 1
        await gate.wait()
        return f"plans as read {calls[0]}"

    started = asyncio.create_task(cache.value("offer", compute))
    await asyncio.sleep(0)
    cache.clear()
    gate.set()
    assert await started == "plans as read 1"
    assert await cache.value("offer", compute) == "plans as read 2"
