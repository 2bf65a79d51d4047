"""Search without HTTP: 4d's queries through `pages.search_page` in this process, against a
seeded database, timed per kind of query and per statement shape.

    python -m bench.search_timing --database-url sqlite+aiosqlite:///FILE [--n 1500]
    python -m bench.search_timing --database-url postgresql+asyncpg://USER@HOST:PORT/DB

The statements run on the database's search reads (`Database.search_reads`), as in the app.
`--level paid` searches as a paying reader. Prints JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from app.access import decision
from app.access.entitlements import ANONYMOUS, Entitlements
from app.articles import pages, search
from app.core.config import Settings
from app.core.db import Database
from app.core.db.direct_reads import Reads
from app.core.db.statements import Params, Query, Row
from bench.scenarios.search_load import _kind, distinct_queries


class TimedReads:
    """Reads that record how long each statement shape took, in ms."""

    def __init__(self, reads: Reads) -> None:
        self.reads, self.dialect = reads, reads.dialect
        self.kind = ""
        self.times: dict[tuple[str, str], list[float]] = {}

    async def _timed(self, run: Callable[[], Any], query: Query, params: Params) -> Any:
        started = time.perf_counter()
        out = await run()
        sql = (query.sqlite if self.dialect == "sqlite" else query.postgres).split()
        shape = " ".join(sql)[:80] + (" [prefix]" if "*" in str(params.get("q", "")) else "")
        self.times.setdefault((self.kind, shape), []).append((time.perf_counter() - started) * 1000)
        return out

    async def one(self, query: Query, params: Params) -> Row | None:
        row: Row | None = await self._timed(lambda: self.reads.one(query, params), query, params)
        return row

    async def all(self, query: Query, params: Params) -> list[Row]:
        rows: list[Row] = await self._timed(lambda: self.reads.all(query, params), query, params)
        return rows

    def ts(self, value: Any) -> Any:
        return self.reads.ts(value)

    async def close(self) -> None:
        await self.reads.close()


def _summary(values: list[float]) -> dict[str, float]:
    values = sorted(values)
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 3),
        "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))], 3),
        "mean_ms": round(statistics.mean(values), 3),
    }


class _Db:
    """The one part of `Database` that search pages use."""

    def __init__(self, reads: TimedReads) -> None:
        self.search_reads = reads


# A reader of each coarse level, as the search route sees them.
READERS = {
    "anonymous": ANONYMOUS,
    "member": Entitlements(signed_in=True),
    "paid": Entitlements(signed_in=True, untiered=True),
}


async def run(reads: Reads, n: int, level: str) -> dict[str, Any]:
    timed = TimedReads(reads)
    readable = decision.readable(READERS[level])
    per_kind: dict[str, list[float]] = {}
    for path in distinct_queries()[:n]:
        timed.kind = _kind(path)
        ask = search.Ask(words=search.terms(unquote(path.split("q=", 1)[1])))
        started = time.perf_counter()
        await pages.search_page(_Db(timed), ask, readable, 20, search.Position())  # type: ignore[arg-type]
        per_kind.setdefault(timed.kind, []).append((time.perf_counter() - started) * 1000)
    await reads.close()
    every = [v for values in per_kind.values() for v in values]
    return {
        "dialect": reads.dialect,
        "level": level,
        "queries": {"all": _summary(every), **{k: _summary(v) for k, v in per_kind.items()}},
        "statements": {f"{k} | {s}": _summary(v) for (k, s), v in sorted(timed.times.items())},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="a database bench/seed.py seeded")
    parser.add_argument("--n", type=int, default=1500)
    parser.add_argument("--level", choices=list(READERS), default="anonymous")
    args = parser.parse_args()
    db = Database(Settings(database_url=args.database_url, jwt_secret="x" * 40))
    result = asyncio.run(run(db.search_reads, args.n, args.level))
    print(json.dumps(result, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
