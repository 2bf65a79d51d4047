"""Readiness: is the database reachable, are its migrations at the code's head, and does it
take writes?"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

from app.core.db import Database

log = logging.getLogger("broadsheet.ops")

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
# How long the write probe waits for another writer's lock (it runs on a thread).
_SQLITE_PROBE_WAIT = 1.0


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    revision: str | None = None


@lru_cache
def code_heads() -> frozenset[str]:
    """Give back the migration heads shipped with this code."""
    config = Config(str(ALEMBIC_INI))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def readiness(db: Database) -> Readiness:
    """Give back whether the database answers, is at the code's migration head and takes
    writes."""
    try:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
            writable = await _takes_writes(db, conn)
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
        log.warning("readiness check failed: %s", type(exc).__name__)
        return Readiness(False, "The database is unreachable or not migrated.")
    applied = frozenset(row[0] for row in rows)
    if applied != code_heads():
        return Readiness(False, "The database schema is not at the latest migration.")
    if not writable:
        return Readiness(False, "The database is read-only: writes would fail.")
    return Readiness(True, revision=",".join(sorted(applied)))


async def _takes_writes(db: Database, conn: AsyncConnection) -> bool:
    if db.is_sqlite:
        # On a thread: the probe may wait for another writer's lock.
        return await asyncio.to_thread(_sqlite_takes_writes, db.url)
    # On for a hot standby and for a database set read-only; either refuses every write.
    if (await conn.execute(text("SHOW transaction_read_only"))).scalar_one() != "on":
        return True
    # The setting stays with the session: checked again on a fresh one, a database that
    # takes writes again is seen to.
    await conn.invalidate()
    return False


def _sqlite_takes_writes(url: str) -> bool:
    """Tell whether this process can write the SQLite file, by writing and rolling back.

    Permission bits cannot tell (root ignores them) and BEGIN IMMEDIATE succeeds on a file
    opened read-only; only a write finds out.
    """
    path = make_url(url).database
    if not path or path == ":memory:":
        return True
    uri = Path(path).resolve().as_uri() + "?mode=rw"
    conn = sqlite3.connect(uri, uri=True, timeout=_SQLITE_PROBE_WAIT, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE alembic_version SET version_num = version_num")
    except sqlite3.OperationalError as exc:
        # Busy: a writer holds the lock past the wait, so the file takes writes.
        return exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY
    finally:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        conn.close()
    return True
