"""Readiness: is the database reachable, are its migrations at the code's head, and does it
take writes?"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import Database
from app.ops import repository

log = logging.getLogger("broadsheet.ops")

# The migration heads this code expects. A constant, not asked of Alembic: importing Alembic
# cost every API worker ~7 MB. tests/core/test_ops.py checks it against the migrations
# shipped, so a new migration that forgets it fails the suite.
SCHEMA_HEADS = frozenset({"0019"})


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    revision: str | None = None


async def readiness(db: Database) -> Readiness:
    """Give back whether the database answers, is at the code's migration head and takes
    writes."""
    try:
        async with db.engine.connect() as conn:
            applied = await repository.applied_revisions(conn)
            writable = await _takes_writes(db, conn)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
        log.warning("readiness check failed: %s", type(exc).__name__)
        return Readiness(False, "The database is unreachable or not migrated.")
    if applied != SCHEMA_HEADS:
        return Readiness(False, "The database schema is not at the latest migration.")
    if not writable:
        return Readiness(False, "The database is read-only: writes would fail.")
    return Readiness(True, revision=",".join(sorted(applied)))


async def _takes_writes(db: Database, conn: AsyncConnection) -> bool:
    if db.is_sqlite:
        # On a thread: the probe may wait for another writer's lock.
        return await asyncio.to_thread(repository.sqlite_takes_writes, db.url)
    if not await repository.postgres_read_only(conn):
        return True
    # The setting stays with the session: checked again on a fresh one, a database that
    # takes writes again is seen to.
    await conn.invalidate()
    return False
