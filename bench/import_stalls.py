"""How long a member import holds the event loop: one import of a generated Ghost CSV in this
process, with a probe task that sleeps 2 ms at a time and records how late it wakes. Every
late wake is a span in which no other request of the process could run. Prints JSON.

    scripts/with-postgres.sh .venv/bin/python -m bench.import_stalls --megabytes 4
    .venv/bin/python -m bench.import_stalls --database sqlite
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from app.accounts.models import Role, User
from app.admin import member_import
from app.core.config import Settings
from app.core.db import Database
from app.core.migrate import upgrade
from bench.scenarios.background_load import member_csv
from bench.seed import fresh_database

PROBE_SECONDS = 0.002


async def _probe(late: list[float]) -> None:
    while True:
        started = time.perf_counter()
        await asyncio.sleep(PROBE_SECONDS)
        late.append(time.perf_counter() - started - PROBE_SECONDS)


def _ms(values: list[float], share: float) -> float:
    return round(values[min(len(values) - 1, int(len(values) * share))] * 1000, 1)


async def measure(url: str, size: int) -> dict[str, object]:
    """Import `size` bytes of new members into the database at `url`; the loop's stalls."""
    settings = Settings(database_url=url, jwt_secret="b" * 40)
    db = Database(settings)
    try:
        async with db.session() as session:
            admin = User(email="import-stalls@bench.example", role=Role.admin.value)
            session.add(admin)
        # As the server does once started (app/main.py): what startup built is out of the
        # collector's sight, so full collections do not pass over it.
        gc.collect()
        gc.freeze()
        late: list[float] = []
        probe = asyncio.create_task(_probe(late))
        started = time.perf_counter()
        async with db.session() as session:
            actor = await session.get(User, admin.id)
            assert actor is not None
            report = await member_import.import_csv(
                session, io.BytesIO(member_csv(0, size)), actor=actor, dry_run=False,
                default_newsletter=None, grace=timedelta(days=settings.billing_grace_days),
            )  # fmt: skip
        seconds = time.perf_counter() - started
        probe.cancel()
    finally:
        await db.dispose()
    late.sort()
    return {
        "members_created": report.created,
        "seconds": round(seconds, 2),
        "stall_p50_ms": _ms(late, 0.5),
        "stall_p99_ms": _ms(late, 0.99),
        "stall_max_ms": _ms(late, 1.0),
        "stalls_over_20_ms": sum(1 for x in late if x > 0.02),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="postgres")
    parser.add_argument("--megabytes", type=float, default=4)
    args = parser.parse_args()
    url = fresh_database(args.database, Path(tempfile.mkdtemp()))
    upgrade(url)
    result = asyncio.run(measure(url, int(args.megabytes * 1024 * 1024)))
    print(json.dumps({"database": args.database, **result}, indent=2))


if __name__ == "__main__":
    main()
