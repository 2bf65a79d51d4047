"""What a PostgreSQL article-page read costs alone and in batches: the page statement of the
reader path (`articles.repository.PAGE`, `slug = ANY`) once per slug, against once for
`--batch` slugs (what the gathered reads send under load), on one asyncpg connection to a
seeded database. Prints wall time and the server backend's CPU (from /proc, so the server
must run on this machine) per page.

    python -m bench.batch_probe --database-url postgresql+asyncpg://USER@HOST:PORT/DB

Each round reads fresh random slugs, one way then the other; the first round meets colder
pages than the second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from app.articles.repository import PAGE

ARTICLES = 100_000


def _backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def probe(url: str, pages: int, batch: int, rounds: int) -> list[dict[str, Any]]:
    """Give back, per round, µs per page (wall and backend CPU) read alone and in batches."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    pid = await conn.fetchval("SELECT pg_backend_pid()")
    sql, _ = PAGE.query.for_postgres({"slug": [], "now": ""})
    rng, now, out = random.Random(1), datetime.now(UTC), []
    for _ in range(rounds):
        slugs = [f"bench-article-{rng.randrange(ARTICLES)}" for _ in range(2 * pages)]
        cpu, wall = _backend_cpu(pid), time.perf_counter()
        for slug in slugs[:pages]:
            await conn.fetch(sql, [slug], now)
        spent = [(_backend_cpu(pid) - cpu, time.perf_counter() - wall)]
        cpu, wall = _backend_cpu(pid), time.perf_counter()
        for start in range(pages, 2 * pages, batch):
            await conn.fetch(sql, slugs[start : start + batch], now)
        spent.append((_backend_cpu(pid) - cpu, time.perf_counter() - wall))
        out.append(
            {
                f"{name}_us_per_page": {
                    "wall": round(w / pages * 1e6),
                    "db_cpu": round(c / pages * 1e6),
                }
                for name, (c, w) in zip(("alone", f"batch_{batch}"), spent, strict=True)
            }
        )
    await conn.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="a database bench/seed.py seeded")
    parser.add_argument("--pages", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    result = asyncio.run(probe(args.database_url, args.pages, args.batch, args.rounds))
    print(json.dumps(result, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
