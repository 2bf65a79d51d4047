"""What the relevance walk of one query costs, on a seeded database, through the app's own
search reads: `search_index.ranked` for a page of 21 as an anonymous reader.

    python -m bench.walk_probe --database-url URL [--n 20] [QUERY ...]

Each query runs 7 times unmeasured, then `--n` times; prints JSON with the hits and the
mean ms of each. Without queries it times a rare number, common words, a short prefix and
a common word with a rare one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from app.access import decision
from app.access.entitlements import ANONYMOUS
from app.articles import search, search_index
from app.core.config import Settings
from app.core.db import Database

QUERIES = ["12345", "storm", "harbour", "ha", "harbour 12345", "harbour council ferr"]


async def probe(url: str, queries: list[str], n: int) -> dict[str, dict[str, float]]:
    """Give back, per query, how many keys the walk found and its mean time in ms."""
    db = Database(Settings(database_url=url, jwt_secret="x" * 40))
    readable = decision.readable(ANONYMOUS)
    out: dict[str, dict[str, float]] = {}
    for query in queries:
        found = search.lookup(search.terms(query), readable)
        for _ in range(7):
            keys = await search_index.ranked(db.search_reads, found, 21)
        started = time.perf_counter()
        for _ in range(n):
            keys = await search_index.ranked(db.search_reads, found, 21)
        mean = (time.perf_counter() - started) / n * 1e3
        out[query] = {"hits": len(keys), "mean_ms": round(mean, 3)}
    await db.dispose()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="a database bench/seed.py seeded")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("queries", nargs="*", default=QUERIES)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(probe(args.database_url, args.queries, args.n)), indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
