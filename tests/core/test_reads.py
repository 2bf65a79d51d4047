"""Direct reads: parameters in both dialects, timestamps that compare like the ORM's, and
PostgreSQL's read connections bounded, queued and never reused after an interrupted read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI

from app.core.db import Query, ReadsUnavailable, parse_ts
from app.core.db.direct_reads import PostgresConnections, PostgresReads

STAMP = Query.portable(
    "SELECT published_at FROM article WHERE slug = :slug AND published_at <= :now"
)


def test_named_parameters_become_numbered_for_postgres() -> None:
    query = Query(sqlite="", postgres="SELECT :b, :a, :b, x::text WHERE y = :a_1")
    sql, args = query.for_postgres({"a": 1, "b": 2, "a_1": 3})
    assert sql == "SELECT $1, $2, $1, x::text WHERE y = $3"
    assert args == [2, 1, 3]


async def test_a_stored_timestamp_compares_equal_to_itself(app: FastAPI) -> None:
    """The boundary case of `published_at <= now`, on whole and fractional seconds."""
    from app.articles.models import Article

    moments = {
        "whole": datetime(2026, 5, 1, 9, 30, tzinfo=UTC),
        "fractional": datetime(2026, 5, 1, 9, 30, 0, 250, tzinfo=UTC),
    }
    async with app.state.db.session() as session:
        for slug, moment in moments.items():
            session.add(Article(slug=slug, title=slug, published_at=moment))
    reads = app.state.db.reads
    for slug, moment in moments.items():
        row = await reads.one(STAMP, {"slug": slug, "now": reads.ts(moment)})
        assert row is not None, slug
        assert parse_ts(row[0]) == moment
        earlier = reads.ts(moment - timedelta(microseconds=1))
        assert await reads.one(STAMP, {"slug": slug, "now": earlier}) is None


SLEEP = Query(sqlite="", postgres="SELECT pg_sleep(:seconds), 1")
OPEN = Query(
    sqlite="",
    postgres="SELECT count(*) FROM pg_stat_activity "
    "WHERE datname = current_database() AND query LIKE 'SELECT pg_sleep%'",
)


def _postgres_reads(app: FastAPI) -> PostgresReads:
    reads = app.state.db.reads
    if not isinstance(reads, PostgresReads):
        pytest.skip("PostgreSQL's read connections; SQLite reads on one stdlib connection")
    return reads


def _limited(
    reads: PostgresReads, size: int, acquire_timeout: float = 10, command_timeout: float = 10
) -> PostgresReads:
    return PostgresReads(PostgresConnections(reads.dsn, size, acquire_timeout, command_timeout))


async def test_busy_readers_queue_for_at_most_size_connections(app: FastAPI) -> None:
    reads = _postgres_reads(app)
    limited = _limited(reads, 2)
    try:
        busy = [asyncio.create_task(limited.one(SLEEP, {"seconds": 0.3})) for _ in range(6)]
        await asyncio.sleep(0.15)  # the first two are inside pg_sleep, the rest queued
        running = await reads.one(OPEN, {})
        results = await asyncio.gather(*busy)
    finally:
        await limited.close()
    assert running is not None and running[0] == 2
    assert [r[1] for r in results if r is not None] == [1] * 6


async def test_a_cancelled_read_gives_its_connection_slot_back(app: FastAPI) -> None:
    reads = _postgres_reads(app)
    limited = _limited(reads, 1)
    try:
        slow = asyncio.create_task(limited.one(SLEEP, {"seconds": 5}))
        waiting = asyncio.create_task(limited.one(SLEEP, {"seconds": 0}))
        await asyncio.sleep(0.2)
        slow.cancel()  # a client that went away mid-read
        waiting.cancel()  # and one that gave up while queued
        for task in (slow, waiting):
            with pytest.raises(asyncio.CancelledError):
                await task
        # The interrupted connection was closed, not reused, and the one slot is free again.
        row = await asyncio.wait_for(limited.one(SLEEP, {"seconds": 0}), 5)
        assert row is not None and row[1] == 1
    finally:
        await limited.close()


async def test_a_reader_waits_for_a_busy_connection_no_longer_than_the_acquire_timeout(
    app: FastAPI,
) -> None:
    reads = _postgres_reads(app)
    limited = _limited(reads, 1, acquire_timeout=0.3)
    try:
        slow = asyncio.create_task(limited.one(SLEEP, {"seconds": 3}))
        await asyncio.sleep(0.1)  # the one connection is inside pg_sleep
        with pytest.raises(ReadsUnavailable, match="acquire timeout"):
            await limited.one(SLEEP, {"seconds": 0})
        assert not slow.done()  # it gave up waiting; the slow read goes on
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        row = await asyncio.wait_for(limited.one(SLEEP, {"seconds": 0}), 5)
        assert row is not None and row[1] == 1
    finally:
        await limited.close()


async def test_a_statement_that_hangs_is_given_up_after_the_command_timeout(
    app: FastAPI,
) -> None:
    reads = _postgres_reads(app)
    limited = _limited(reads, 1, command_timeout=0.3)
    try:
        with pytest.raises(ReadsUnavailable, match="TimeoutError"):
            await limited.one(SLEEP, {"seconds": 5})
        # The timed-out connection was closed; the slot serves the next read.
        row = await asyncio.wait_for(limited.one(SLEEP, {"seconds": 0}), 5)
        assert row is not None and row[1] == 1
    finally:
        await limited.close()
