"""Gathered reads: each caller gets its own key's rows on both databases; on PostgreSQL a key
goes at once while there is room, the keys asked for while there is none go together in the
next statement, and one caller's cancellation or a statement's failure is handled per batch."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from fastapi import FastAPI

from app.articles.models import Article
from app.core.db import Gathered, Query, Row
from app.core.db.direct_reads import PostgresConnections, PostgresReads

SLUGS = Gathered(
    Query(
        sqlite="SELECT title, slug FROM article WHERE title = :title AND id > :after ORDER BY id",
        postgres="SELECT title, slug FROM article WHERE title = ANY(:title) AND id > :after "
        "ORDER BY id",
    ),
    key="title",
)

# Rows of one statement share its statement_timestamp(); the pause keeps a batch on its way.
# A key that is not a number fails the whole statement.
STAMPED = Gathered(
    Query(
        sqlite="",
        postgres="""WITH pause AS (SELECT pg_sleep(:pause))
SELECT k, statement_timestamp(), CAST(k AS int) FROM unnest(CAST(:k AS text[])) AS k, pause""",
    ),
    key="k",
)


async def test_each_caller_gets_its_own_keys_rows(app: FastAPI) -> None:
    async with app.state.db.session() as session:
        for n in range(5):
            session.add(Article(slug=f"piece-{n}", title=("Even", "Odd")[n % 2]))
    reads = app.state.db.reads
    asked = ["Odd", "Even", "None", "Odd"]
    rows = await asyncio.gather(*(reads.gathered(SLUGS, {"title": t, "after": 0}) for t in asked))
    odd = [("piece-1",), ("piece-3",)]
    assert rows == [odd, [("piece-0",), ("piece-2",), ("piece-4",)], [], odd]


def _one_at_a_time(app: FastAPI, most: int = 100) -> PostgresReads:
    reads = app.state.db.reads
    if not isinstance(reads, PostgresReads):
        pytest.skip("PostgreSQL gathers keys; SQLite reads each on the event loop")
    connections = PostgresConnections(reads.dsn, 4, 10, 10)
    return PostgresReads(connections, gathered_in_flight=1, gathered_most=most)


def _ask(reads: PostgresReads, keys: list[str], pause: float) -> list[asyncio.Task[list[Row]]]:
    return [asyncio.create_task(reads.gathered(STAMPED, {"k": k, "pause": pause})) for k in keys]


async def test_a_key_goes_at_once_and_those_asked_meanwhile_together_next(app: FastAPI) -> None:
    reads = _one_at_a_time(app)
    try:
        async with asyncio.timeout(5):  # a lost answer fails here rather than hangs
            first = _ask(reads, ["1"], 0.3)
            await asyncio.sleep(0.1)  # the first batch is inside pg_sleep
            meanwhile = []
            for k in ("2", "3", "4", "2"):  # each in a turn of its own
                meanwhile += _ask(reads, [k], 0.05)
                await asyncio.sleep(0)
            rows = [row for task in first + meanwhile for row in await task]
    finally:
        await reads.close()
    assert [row[1] for row in rows] == [1, 2, 3, 4, 2]
    stamps = [row[0] for row in rows]
    assert stamps[0] < stamps[1] and len(set(stamps[1:])) == 1


async def test_a_batch_reads_at_most_its_limit_of_keys(app: FastAPI) -> None:
    reads = _one_at_a_time(app, most=2)
    try:
        async with asyncio.timeout(5):
            rows = [row for task in _ask(reads, list("12345"), 0) for row in await task]
    finally:
        await reads.close()
    stamps = [row[0] for row in rows]
    assert [row[1] for row in rows] == [1, 2, 3, 4, 5]
    assert stamps[0] < stamps[1] == stamps[2] < stamps[3] == stamps[4]


async def test_a_cancelled_caller_leaves_its_batch_to_the_others(app: FastAPI) -> None:
    reads = _one_at_a_time(app)
    try:
        async with asyncio.timeout(5):
            tasks = _ask(reads, ["7", "8", "9"], 0.2)  # 7 goes, 8 and 9 wait together
            await asyncio.sleep(0.3)  # 8 and 9 are inside pg_sleep
            tasks[1].cancel()
            kept = [row for task in (tasks[0], tasks[2]) for row in await task]
            with pytest.raises(asyncio.CancelledError):
                await tasks[1]
            again = await reads.gathered(STAMPED, {"k": "8", "pause": 0})
    finally:
        await reads.close()
    assert [row[1] for row in kept] == [7, 9]
    assert [row[1] for row in again] == [8]


async def test_a_failing_statement_fails_its_batch_and_the_next_one_runs(app: FastAPI) -> None:
    reads = _one_at_a_time(app)
    try:
        async with asyncio.timeout(5):
            out = _ask(reads, ["10"], 0.2)
            await asyncio.sleep(0.05)
            failing = _ask(reads, ["eleven", "13"], 0)  # together, after 10
            outcomes = await asyncio.gather(*failing, return_exceptions=True)
            after = await reads.gathered(STAMPED, {"k": "12", "pause": 0})
            first = await out[0]
    finally:
        await reads.close()
    assert all(isinstance(o, asyncpg.InvalidTextRepresentationError) for o in outcomes)
    assert [row[1] for row in first + after] == [10, 12]
