"""What the relevance walk of one query costs, on a seeded database, through the app's own
search reads: `search_index.ranked` for a page of 21 as an anonymous reader.

    python -m bench.walk_probe --database-url URL [--n 20] [QUERY ...]
    python -m bench.walk_probe --database-url URL --distinct 600 [--against OLD.py]

Each query runs 7 times unmeasured, then `--n` times; prints JSON with the hits and the
mean ms of each. Without queries it times a rare number, common words, a short prefix and
a common word with a rare one. `--distinct N` times N of 4d's distinct queries instead,
once each, per kind of query; with `--against` (another version of
app/articles/search_index.py, e.g. from `git show`) the two take turns over eight rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import random
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from app.access import decision
from app.access.entitlements import ANONYMOUS
from app.articles import search, search_index
from app.core.config import Settings
from app.core.db import Database, Reads
from bench.scenarios.search_load import _kind, distinct_queries

QUERIES = ["12345", "storm", "harbour", "ha", "harbour 12345", "harbour council ferr"]
ROUNDS = 8
WARM = 30  # unmeasured walks before each round's


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


def _load(path: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("search_index_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


async def _walk(module: ModuleType, reads: Reads, query: str) -> float:
    found = search.lookup(search.terms(query), decision.readable(ANONYMOUS))
    lookup = module.Lookup(**found.__dict__)
    started = time.perf_counter()
    await module.ranked(reads, lookup, 21)
    return (time.perf_counter() - started) * 1e3


async def distinct(url: str, n: int, against: str | None) -> dict[str, dict[str, Any]]:
    """Give back, per version and kind of query, the median and mean ms of one walk each."""
    versions = {"current": search_index}
    if against:
        versions[Path(against).name] = _load(against)
    db = Database(Settings(database_url=url, jwt_secret="x" * 40))
    queries = [(unquote(path.split("q=", 1)[1]), _kind(path)) for path in distinct_queries()]
    rng = random.Random(9)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in versions}
    for round_ in range(ROUNDS):
        order = list(versions.items())
        for name, module in order if round_ % 2 == 0 else order[::-1]:
            sample = rng.sample(queries, n + WARM)
            for query, _ in sample[:WARM]:  # the connections and their plans
                await _walk(module, db.search_reads, query)
            for query, kind in sample[WARM:]:
                times[name].setdefault(kind, []).append(await _walk(module, db.search_reads, query))
    await db.dispose()
    return {
        name: {
            kind: {"n": len(t), "p50_ms": round(statistics.median(t), 3),
                   "mean_ms": round(statistics.mean(t), 3)}
            for kind, t in sorted(kinds.items())
        }
        for name, kinds in times.items()
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="a database bench/seed.py seeded")
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--distinct", type=int, default=0, help="distinct queries per round")
    parser.add_argument("--against", help="another search_index.py, alternated with this one")
    parser.add_argument("queries", nargs="*", default=QUERIES)
    args = parser.parse_args()
    if args.distinct:
        result: Any = asyncio.run(distinct(args.database_url, args.distinct, args.against))
    else:
        result = asyncio.run(probe(args.database_url, args.queries, args.n))
    print(json.dumps(result, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
