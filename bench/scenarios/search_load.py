"""Scenarios 4d, 4s and 4q: search as readers type it, over the seeded archive (bench/seed.py).

The seed's titles are "<Word> <word> number <i>" from seed.WORDS, its bodies those words with
a rare word now and then; the public text holds "Tag <i % 200>" and "Author <i % 50>". So a
number names one article (rare), a seed word matches nearly every article (common), and a
word with a number is a two-word query of one common and one rare term.

    4d  20,000 distinct queries: a third a number, a third a word and a number, a third two
        or three common words, the last often a prefix
    4s  type-ahead: 2-4 letter prefixes of the title words, alone or after a whole word
    4q  the 4d queries over one connection (one query alone: its p50 is the latency)
"""

from __future__ import annotations

import random
from urllib.parse import quote

from bench import seed

SEED = 18
QUERIES = 20_000


def _common(rng: random.Random) -> str:
    words = rng.sample(seed.WORDS, rng.choice((1, 2, 3)))
    if rng.random() < 0.5:
        words[-1] = words[-1][: rng.randint(2, 5)]
    return " ".join(words)


def distinct_queries(articles: int = 100_000, n: int = QUERIES) -> list[str]:
    """Give back `n` distinct search paths mixing rare, common and two-word queries."""
    rng = random.Random(SEED)
    chosen: dict[str, None] = {}
    attempts = 0
    while len(chosen) < n and attempts < n * 20:
        attempts += 1
        kind = len(chosen) % 3
        if kind == 0:
            query = str(rng.randrange(200, articles))
        elif kind == 1:
            query = f"{rng.choice(seed.WORDS)} {rng.randrange(200, articles)}"
        else:
            query = _common(rng)
        chosen.setdefault(query, None)
    return [f"/api/v1/search?q={quote(q)}" for q in chosen]


def suggest_prefixes() -> list[str]:
    """Give back type-ahead paths: 2-4 letter prefixes, alone and after a whole title word."""
    paths: dict[str, None] = {}
    for word in seed.WORDS:
        for size in (2, 3, 4):
            paths.setdefault(f"/api/v1/search/suggest?q={word[:size]}", None)
            other = seed.WORDS[(seed.WORDS.index(word) + 7) % len(seed.WORDS)]
            paths.setdefault(f"/api/v1/search/suggest?q={quote(other + ' ' + word[:size])}", None)
    return list(paths)


def _kind(path: str) -> str:
    words = path.split("q=", 1)[1].split("%20")
    rare = [w for w in words if w.isdigit()]
    if not rare:
        return "common"
    return "rare" if len(words) == 1 else "two_word"


def sequential(base: str, paths: list[str], auth: str | None = None) -> dict[str, object]:
    """Request `paths` one after another on one connection; p50/p99 in ms per kind of query."""
    import statistics
    import time

    import httpx

    timings: dict[str, list[float]] = {}
    headers = {"Authorization": auth} if auth else {}
    with httpx.Client(base_url=base, timeout=30, headers=headers) as http:
        for path in paths:
            started = time.perf_counter()
            answer = http.get(path)
            elapsed = (time.perf_counter() - started) * 1000
            if answer.status_code != 200:
                raise SystemExit(f"{path}: {answer.status_code} {answer.text[:200]}")
            kind = "suggest" if "/suggest" in path else _kind(path)
            timings.setdefault(kind, []).append(elapsed)
    out: dict[str, object] = {}
    for kind, values in timings.items():
        values.sort()
        out[kind] = {
            "n": len(values),
            "p50_ms": round(statistics.median(values), 2),
            "p99_ms": round(values[min(len(values) - 1, int(len(values) * 0.99))], 2),
        }
    return out


def main() -> None:
    import argparse
    import json

    parser = argparse.ArgumentParser(description="One connection, queries one after another.")
    parser.add_argument("--base", required=True)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--skip", type=int, default=0, help="start this far into the queries")
    args = parser.parse_args()
    queries = distinct_queries()[args.skip : args.skip + args.n]
    print(json.dumps(sequential(args.base, queries + suggest_prefixes()), indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
