"""What one FTS5 statement of 4d costs by the shape of its words, on a seeded SQLite file.

    python -m bench.fts_probe --database FILE [--n 300]

Times, per table (titles, and the main table's title and public text): a rare word alone
(an article's number), a common word alone, the two ANDed as 4d's two-word queries are, and
the same AND held to the one key the rare word found (`rowid = ?`). It answers whether a
two-word query pays for the common word's whole doclist. Prints JSON, times in ms.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time

from app.articles.search_index import LIVE_FLOOR, SEARCH_TABLE, TITLE_TABLE

_TABLES = {TITLE_TABLE: "title", SEARCH_TABLE: "{title public_text}"}
_HIGHEST = 2**63 - 1


def _mean_ms(conn: sqlite3.Connection, sql: str, params: tuple[object, ...], n: int) -> float:
    for _ in range(3):
        conn.execute(sql, params).fetchall()
    started = time.perf_counter()
    for _ in range(n):
        conn.execute(sql, params).fetchall()
    return round((time.perf_counter() - started) / n * 1e3, 4)


def probe(conn: sqlite3.Connection, rare: str, common: str, n: int) -> dict[str, object]:
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
        out[table] = times
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", required=True, help="a SQLite file bench/seed.py seeded")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--rare", default="12345")
    parser.add_argument("--common", default="teacher")
    args = parser.parse_args()
    conn = sqlite3.connect(f"file:{args.database}?mode=ro", uri=True)
    result = {"sqlite": sqlite3.sqlite_version, **probe(conn, args.rare, args.common, args.n)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
