"""What one FTS5 statement of 4d costs by the shape of its words, on a seeded SQLite file.

    python -m bench.fts_probe --database FILE [--n 300] [--merge] [--edits N]

Times, per table (titles, and the main table's title and public text): a rare word alone
(an article's number), a common word alone, the two ANDed as 4d's two-word queries are, and
the same AND held to the one key the rare word found (`rowid = ?`). It answers whether a
two-word query pays for the common word's whole doclist. Each table's segments come from
its structure record. `--merge` first runs the worker's merge job on the file until it has
no work left (it writes) and times its rounds; `--edits N` first writes N random articles'
entries again, one transaction each, as staff edits do (it writes). Prints JSON, times in
ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import time

import sqlalchemy as sa

from app.articles import search_rebuild
from app.articles.jobs import merge_search_index
from app.articles.search_index import LIVE_FLOOR, SEARCH_TABLE, TITLE_TABLE
from app.core.config import Settings
from app.core.db import Database

_TABLES = {TITLE_TABLE: "title", SEARCH_TABLE: "{title public_text}"}
_HIGHEST = 2**63 - 1


def _mean_ms(conn: sqlite3.Connection, sql: str, params: tuple[object, ...], n: int) -> float:
    for _ in range(3):
        conn.execute(sql, params).fetchall()
    started = time.perf_counter()
    for _ in range(n):
        conn.execute(sql, params).fetchall()
    return round((time.perf_counter() - started) / n * 1e3, 4)


async def merge(path: str) -> dict[str, float]:
    """Run the merge job on `path` until it has no work left; give back its rounds' times."""
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}")
    db = Database(settings)
    rounds: list[float] = []
    started = time.perf_counter()
    while True:
        began = time.perf_counter()
        busy = await merge_search_index(db, settings)
        rounds.append((time.perf_counter() - began) * 1e3)
        if not busy:
            break
    await db.dispose()
    return {
        "rounds": len(rounds),
        "total_s": round(time.perf_counter() - started, 2),
        "p50_round_ms": round(sorted(rounds)[len(rounds) // 2], 1),
        "longest_round_ms": round(max(rounds), 1),
    }


def edit(path: str, count: int) -> None:
    """Write `count` random articles' entries again, each in a transaction of its own."""
    engine = sa.create_engine(f"sqlite:///{path}")
    rng = random.Random(5)
    with engine.connect() as conn:
        ids = [row[0] for row in conn.execute(sa.text("SELECT id FROM article"))]
    for _ in range(count):
        with engine.begin() as conn:
            search_rebuild.reindex(conn, [rng.choice(ids)])
    engine.dispose()


def segments(path: str, table: str) -> int:
    """Give back how many segments an FTS5 table of the file holds."""
    engine = sa.create_engine(f"sqlite:///file:{path}?mode=ro&uri=true")
    with engine.connect() as conn:
        found = search_rebuild.segments(conn, table)
    engine.dispose()
    return found


def probe(conn: sqlite3.Connection, path: str, rare: str, common: str, n: int) -> dict[str, object]:
    """Give back the mean time of each shape in each table for these two words."""
    out: dict[str, object] = {}
    for table, columns in _TABLES.items():
        walk = (
            f"SELECT rowid FROM {table} WHERE {table} MATCH ? "  # noqa: S608
            "AND rowid BETWEEN ? AND ? ORDER BY rowid DESC LIMIT 21"
        )
        match = {
            "rare": f'{columns} : ("{rare}"*)',
            "common": f'{columns} : ("{common}")',
            "both": f'{columns} : ("{common}" "{rare}"*)',
        }
        times = {k: _mean_ms(conn, walk, (q, LIVE_FLOOR, _HIGHEST), n) for k, q in match.items()}
        found = conn.execute(walk, (match["rare"], LIVE_FLOOR, _HIGHEST)).fetchone()
        if found is not None:
            held = f"SELECT rowid FROM {table} WHERE {table} MATCH ? AND rowid = ?"  # noqa: S608
            times["both_at_key"] = _mean_ms(conn, held, (match["both"], found[0]), n)
        out[table] = {"segments": segments(path, table), **times}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True, help="a SQLite file bench/seed.py seeded")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rare", default="12345")
    parser.add_argument("--common", default="teacher")
    parser.add_argument("--merge", action="store_true", help="merge the index first (writes)")
    parser.add_argument("--edits", type=int, default=0, help="reindex N articles (writes)")
    args = parser.parse_args()
    result: dict[str, object] = {"sqlite": sqlite3.sqlite_version}
    if args.merge:
        result["merge"] = asyncio.run(merge(args.database))
    if args.edits:
        edit(args.database, args.edits)
    conn = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True)
    result.update(probe(conn, args.database, args.rare, args.common, args.n))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
