"""This checkout against another on one HTTP scenario, taking turns: each round serves one
checkout fresh (an empty response cache), measures it with wrk, stops it, then does the same
for the other, the two going first by turns. On a machine whose speed drifts within minutes,
alternating short runs ranks two versions where two full `bench.run`s minutes apart cannot.

    git worktree add --detach ../before HEAD~1
    python -m bench.ab --database-url URL --against ../before --scenario 1t --rounds 6
    python -m bench.ab --database-url URL --against . --workers 2 --against-workers 1 ...

URL is a database bench/seed.py seeded (an SQLite file's URL or a PostgreSQL one); both
checkouts read it. Prints each round and the median of each side as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.scenarios import readers
from bench.servers import ROOT, app_env, free_port, serve, stop, wrk


def _paths(url: str, scenario: str, workdir: Path) -> tuple[list[str], str | None]:
    port = free_port()
    app = serve("app.main:create_app", port, 1, app_env(url, workdir))
    try:
        data = asyncio.run(readers.load(url, f"http://127.0.0.1:{port}"))
    finally:
        stop(app)
    runs = {name.split("_")[0]: load for name, load in readers.http_runs(data).items()}
    if scenario not in runs:
        raise SystemExit(f"no scenario {scenario!r}: one of {sorted(runs)}")
    return runs[scenario]


def _measure(
    side: tuple[Path, int], args: argparse.Namespace, env: dict[str, str], load: Any
) -> Any:
    (checkout, workers), (paths, auth) = side, load
    port = free_port()
    app = serve("app.main:create_app", port, workers, env, checkout=checkout)
    try:
        return wrk(port, paths, duration=args.duration, connections=args.connections, auth=auth)
    finally:
        stop(app)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True, help="a database bench/seed.py seeded")
    parser.add_argument("--against", required=True, type=Path, help="the other checkout")
    parser.add_argument("--scenario", required=True, help="bench.run's name before the _: 1t")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--against-workers", type=int, help="the other side's workers (--workers unless told)"
    )
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="broadsheet-ab-"))
    env = app_env(args.database_url, workdir)
    load = _paths(args.database_url, args.scenario, workdir)
    sides = {
        "this": (ROOT, args.workers),
        "against": (args.against.resolve(), args.against_workers or args.workers),
    }
    rounds: list[dict[str, Any]] = []
    for n in range(args.rounds):
        # Each side goes first every other round: the first of a pair may meet warmer caches.
        order = list(sides) if n % 2 == 0 else list(reversed(sides))
        rounds.append({side: _measure(sides[side], args, env, load) for side in order})
        print(json.dumps(rounds[-1]), flush=True)  # noqa: T201
    medians = {
        side: {
            key: statistics.median(r[side][key] for r in rounds)
            for key in ("requests_per_s", "p50_ms", "p99_ms")
        }
        for side in sides
    }
    print(json.dumps({"scenario": args.scenario, "median": medians}, indent=1))  # noqa: T201


if __name__ == "__main__":
    main()
