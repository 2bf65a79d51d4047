"""Broadsheet benchmarks: requests/s, p50, p99 and errors per scenario, as ratios to a bare
FastAPI endpoint served by the same uvicorn setup in the same run. Results go to
bench/results/<database>-<time>.json and stdout.

    python -m bench.run --database sqlite --workers 1 --articles 100000 --members 100000
    scripts/with-postgres.sh python -m bench.run --database postgres ...

Load comes from wrk in a separate process on 127.0.0.1 (installed from Debian if missing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from app.cli import EVENT_LOOP
from app.core.migrate import upgrade
from bench import seed as seeding
from bench.scenarios import background_load, newsletter_send, readers, search_load, webhooks
from bench.servers import ROOT, app_env, free_port, prime, rss_mb, serve, stop, wrk


class Stalls:
    """The event-loop report of bench.stall_probe's app for each scenario (with one worker:
    each request reaches one worker's probe), or nothing when the probe is off."""

    def __init__(self, port: int | None) -> None:
        self.port = port

    def _read(self) -> dict[str, Any]:
        got = httpx.get(f"http://127.0.0.1:{self.port}/_bench/stalls", timeout=10)
        report: dict[str, Any] = got.raise_for_status().json()
        return report

    def reset(self) -> None:
        if self.port is not None:
            self._read()

    def add(self, measured: dict[str, Any]) -> dict[str, Any]:
        if self.port is not None:
            measured["loop_stalls"] = self._read()
        return measured


def background_scenarios(
    port: int, paths: list[str], args: argparse.Namespace, bare: float, newsletter_id: int, tag: str
) -> dict[str, Any]:
    """Scenario 7 against the server on `port`: anonymous article reads while a newsletter
    snapshot (b) and then a member import (a) run back to back in the same process. The last
    import is not waited for: stop the server next."""
    base = f"http://127.0.0.1:{port}"
    token = background_load.admin_token(base, seeding.ADMIN_EMAIL, seeding.ADMIN_PASSWORD)
    issues: list[int] = []
    jobs = {
        f"7b{tag}_article_during_snapshot": (
            background_load.snapshot_job(base, token, newsletter_id, issues),
            True,
        ),
        f"7a{tag}_article_during_import": (background_load.import_job(base, token), False),
    }
    out: dict[str, Any] = {}
    for name, (job, wait) in jobs.items():
        print(f"scenario {name}...", flush=True)
        if tag:  # the cache is off: warm the connections only
            wrk(port, paths, duration=2, connections=args.connections, warmup=False)
        else:
            prime(port, paths)
        measured = background_load.measure_during(
            job,
            lambda: wrk(
                port, paths, duration=args.duration, connections=args.connections, warmup=False
            ),
            wait=wait,
        )
        measured["ratio_to_bare"] = ratio(measured["requests_per_s"], bare)
        out[name] = measured
        if wait:
            background_load.cancel_issues(base, token, issues)
    return out


def _seeded(
    url: str, args: argparse.Namespace, skip: set[str], workdir: Path
) -> tuple[dict[str, Any], int]:
    """Seed the database; on SQLite, `--seeded-copy FILE` copies FILE instead when it exists
    (and keeps a copy there when it does not), so runs of two commits start from one seed."""
    copy = Path(args.seeded_copy) if args.seeded_copy and args.database == "sqlite" else None
    if copy is not None and copy.exists():
        shutil.copyfile(copy, workdir / "bench.db")
        upgrade(url)  # a seed kept by an older commit lacks the newer tables
        saved = json.loads(copy.with_suffix(".json").read_text())
        return saved["seed"], saved["background_list"]
    print(
        f"seeding {args.articles} articles and {args.members} members on {args.database}...",
        flush=True,
    )
    seeded = asyncio.run(seeding.seed(url, args.articles, args.members))
    background_list = 0
    if "7" not in skip:
        background_list = asyncio.run(
            background_load.prepare_snapshot(url, args.background_recipients)
        )
    if copy is not None:
        with sqlite3.connect(workdir / "bench.db") as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        shutil.copyfile(workdir / "bench.db", copy)
        copy.with_suffix(".json").write_text(
            json.dumps({"seed": seeded, "background_list": background_list})
        )
    return seeded, background_list


def ratio(value: float, bare: float) -> float:
    return round(value / bare, 3) if bare else 0.0


def rebase_ratios(results: dict[str, Any]) -> None:
    """Make every HTTP ratio one to the mean of the bare runs at the start and the end, and
    record how far those two were apart (the run's noise on the denominator)."""
    again = results.get("bare_again")
    if not again:
        return
    first, last = results["bare"]["requests_per_s"], again["requests_per_s"]
    mean = (first + last) / 2
    results["bare_mean_requests_per_s"] = round(mean, 1)
    results["bare_spread"] = round(abs(first - last) / mean, 3) if mean else 0.0
    for measured in results["scenarios"].values():
        if "requests_per_s" in measured and "ratio_to_bare" in measured:
            measured["ratio_to_bare"] = ratio(measured["requests_per_s"], mean)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--webhook-events", type=int, default=2000)
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--background-recipients", type=int, default=100_000)
    parser.add_argument("--seeded-copy", default="", help="SQLite: reuse or keep a seeded file")
    parser.add_argument("--skip", default="", help="comma-separated scenarios to skip")
    parser.add_argument(
        "--seeded-url", default="", help="a database bench/seed.py seeded, used as it is"
    )
    parser.add_argument("--loop", default=EVENT_LOOP, help="uvicorn's event loop, for both servers")
    parser.add_argument(
        "--stall-probe",
        action="store_true",
        help="serve bench.stall_probe's app and add each scenario's event-loop stalls",
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    workdir = Path(tempfile.mkdtemp(prefix="broadsheet-bench-"))
    if args.seeded_url:
        # A database an earlier run (or bench/seed.py) seeded: read-only scenarios only.
        if not skip >= {"5", "6", "7"}:
            raise SystemExit("--seeded-url is for runs that --skip 5,6,7 (they write)")
        url, seeded, background_list = args.seeded_url, {"reused": args.seeded_url}, 0
        if args.database == "postgres":
            seeded["prewarmed_relations"] = asyncio.run(seeding.warm(url))
    else:
        url = seeding.fresh_database(args.database, workdir)
        seeded, background_list = _seeded(url, args, skip, workdir)
    env = app_env(url, workdir)
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "database": args.database,
        "workers": args.workers,
        "connections": args.connections,
        "duration_s": args.duration,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "seed": seeded,
        "scenarios": {},
    }
    bare_port, app_port = free_port(), free_port()
    bare = serve("bench.bare:create_app", bare_port, args.workers, {}, args.loop)
    factory = "bench.stall_probe:create_app" if args.stall_probe else "app.main:create_app"
    app = serve(factory, app_port, args.workers, env, args.loop)
    probed = Stalls(app_port if args.stall_probe else None)
    try:
        base = f"http://127.0.0.1:{app_port}"
        data = asyncio.run(readers.load(url, base))
        baseline = wrk(bare_port, ["/ping"], duration=args.duration, connections=args.connections)
        results["bare"] = baseline
        # Once more at the end: the spread of the two is this run's noise, and every ratio is
        # to their mean (filled in below).
        b = baseline["requests_per_s"]
        runs = readers.http_runs(data, args.articles)
        for name, (paths, auth) in runs.items():
            if name.split("_")[0][0] in skip:
                continue
            print(f"scenario {name}...", flush=True)
            if name.startswith(("1_", "2_")):  # the sample the cache holds; the tails are not
                prime(app_port, paths, auth)
            probed.reset()
            measured = wrk(
                app_port, paths, duration=args.duration, connections=args.connections, auth=auth
            )
            measured["ratio_to_bare"] = ratio(measured["requests_per_s"], b)
            results["scenarios"][name] = probed.add(measured)
        if "4" not in skip:
            # One search at a time: what a query costs alone (issue 18's 5 ms target).
            print("scenario 4q_search_one_connection...", flush=True)
            probed.reset()
            measured = wrk(
                app_port, search_load.distinct_queries(args.articles), duration=args.duration,
                connections=1,
            )  # fmt: skip
            measured["ratio_to_bare"] = ratio(measured["requests_per_s"], b)
            results["scenarios"]["4q_search_one_connection"] = probed.add(measured)
        results["rss_mb_after_http"] = rss_mb(app, "VmRSS")
        results["peak_rss_mb_after_http"] = rss_mb(app, "VmHWM")
        if "7" not in skip:
            results["scenarios"].update(
                background_scenarios(app_port, data.sample, args, b, background_list, "")
            )
            results["rss_mb_after_background"] = rss_mb(app, "VmRSS")
        stop(app)
        # With the response cache off: what a page or a suggestion costs when it is rendered.
        uncached = {**env, "BROADSHEET_RESPONSE_CACHE_SECONDS": "0"}
        app = serve(factory, app_port, args.workers, uncached, args.loop)
        for name, auth, paths in (
            ("1u_article_anonymous_uncached", None, data.sample),
            ("2u_article_paid_reader_uncached", data.paid, data.sample),
            ("4su_search_suggest_uncached", None, search_load.suggest_prefixes()),
        ):
            if name[0] in skip:
                continue
            print(f"scenario {name}...", flush=True)
            probed.reset()
            measured = wrk(
                app_port, paths, duration=args.duration, connections=args.connections, auth=auth
            )
            measured["ratio_to_bare"] = ratio(measured["requests_per_s"], b)
            results["scenarios"][name] = probed.add(measured)
        if "7" not in skip:
            results["scenarios"].update(
                background_scenarios(app_port, data.sample, args, b, background_list, "u")
            )
        results["bare_again"] = wrk(
            bare_port, ["/ping"], duration=args.duration, connections=args.connections
        )
    finally:
        stop(app)
        stop(bare)
    rebase_ratios(results)
    if "5" not in skip:
        print("scenario 5 (webhooks)...", flush=True)
        results["scenarios"]["5_webhooks"] = webhooks.run(
            url, env, args.webhook_events, args.workers
        )
    if "6" not in skip:
        print("scenario 6 (newsletter send)...", flush=True)
        results["scenarios"]["6_newsletter_send"] = asyncio.run(
            newsletter_send.run(url, workdir, args.recipients)
        )
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    path = out_dir / f"{args.database}-{stamp}.json"
    path.write_text(json.dumps(results, indent=2, default=str))
    print(json.dumps(results, indent=2, default=str))
    print(f"written to {path}")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
