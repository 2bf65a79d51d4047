"""Direct reads on PostgreSQL: the app's own connection stack (PostgresConnections) against
asyncpg's pool with the same timeouts, in one process.

The two take turns in short rounds, so both see the same machine noise; the spread of the
rounds is printed beside the medians. Each round runs `--tasks` concurrent readers doing
indexed point reads of ~5 kB rows, the shape of the article page's one query.

    scripts/with-postgres.sh .venv/bin/python -m bench.pool_ab --rounds 20

Both bound the wait for a connection and the time of a statement; the stack is kept only
while it is faster by more than the rounds' spread.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from typing import Any, Protocol

import asyncpg

from app.core.db.direct_reads import PostgresConnections
from app.core.db.statements import Query

ROWS = 5_000
POINT_READ = Query.portable("SELECT id, slug, body FROM pool_ab WHERE id = :id")


class Reader(Protocol):
    async def fetch(self, query: Query, params: dict[str, Any]) -> list[Any]: ...

    async def close(self) -> None: ...


class AsyncpgPool:
    """The design tried in b4d1ee3: asyncpg's own pool with a no-op reset, an acquire
    timeout and a command timeout."""

    def __init__(self, dsn: str, size: int, acquire_timeout: float, command_timeout: float):
        self.dsn = dsn
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None

    async def fetch(self, query: Query, params: dict[str, Any]) -> list[Any]:
        if self._pool is None:
            self._pool = await asyncpg.create_pool(
                self.dsn,
                min_size=0,
                max_size=self.size,
                reset=_no_reset,
                command_timeout=self.command_timeout,
            )
        sql, args = query.for_postgres(params)
        async with self._pool.acquire(timeout=self.acquire_timeout) as conn:
            records = await conn.fetch(sql, *args)
        return [tuple(record) for record in records]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()


async def _no_reset(_conn: asyncpg.Connection) -> None:
    return None


async def _prepare(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS pool_ab")
        await conn.execute("CREATE TABLE pool_ab (id int PRIMARY KEY, slug text, body text)")
        await conn.executemany(
            "INSERT INTO pool_ab VALUES ($1, $2, $3)",
            [(i, f"article-{i}", "x" * 5_000) for i in range(ROWS)],
        )
        await conn.execute("ANALYZE pool_ab")
    finally:
        await conn.close()


async def _round(reader: Reader, tasks: int, reads: int) -> float:
    async def one_task(offset: int) -> None:
        for i in range(reads):
            await reader.fetch(POINT_READ, {"id": (offset * 7919 + i * 31) % ROWS})

    started = time.perf_counter()
    await asyncio.gather(*(one_task(n) for n in range(tasks)))
    return tasks * reads / (time.perf_counter() - started)


async def main(rounds: int, tasks: int, reads: int, size: int) -> dict[str, Any]:
    dsn = os.environ["BROADSHEET_TEST_DATABASE_URL"].replace("postgresql+asyncpg", "postgresql")
    await _prepare(dsn)
    readers: dict[str, Reader] = {
        "asyncpg_pool": AsyncpgPool(dsn, size, acquire_timeout=10.0, command_timeout=30.0),
        "connection_stack": PostgresConnections(
            dsn, size, acquire_timeout=10.0, command_timeout=30.0
        ),
    }
    rates: dict[str, list[float]] = {name: [] for name in readers}
    for reader in readers.values():
        await _round(reader, tasks, reads // 4)  # open connections, warm plans
    for n in range(rounds):
        # Alternate who goes first, so neither always follows the other's garbage.
        order = list(readers) if n % 2 == 0 else list(reversed(readers))
        for name in order:
            rates[name].append(await _round(readers[name], tasks, reads))
    for reader in readers.values():
        await reader.close()
    summary = {
        name: {
            "median_reads_per_s": round(statistics.median(values)),
            "min": round(min(values)),
            "max": round(max(values)),
            "stdev": round(statistics.stdev(values)),
        }
        for name, values in rates.items()
    }
    pairs = [p / s for p, s in zip(rates["asyncpg_pool"], rates["connection_stack"], strict=True)]
    return {
        "rounds": rounds,
        "tasks": tasks,
        "reads_per_task": reads,
        "pool_size": size,
        "results": summary,
        "pool_over_stack_median": round(statistics.median(pairs), 3),
        "pool_over_stack_range": [round(min(pairs), 3), round(max(pairs), 3)],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--reads", type=int, default=200, help="reads per task per round")
    parser.add_argument("--pool-size", type=int, default=10)
    args = parser.parse_args()
    result = asyncio.run(main(args.rounds, args.tasks, args.reads, args.pool_size))
    print(json.dumps(result, indent=2))
