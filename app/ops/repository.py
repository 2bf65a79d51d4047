"""The statements of the readiness probe: the applied migrations, and whether the database
takes writes (PostgreSQL's read-only setting; on SQLite a write rolled back)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection

# How long the write probe waits for another writer's lock (it runs on a thread).
_SQLITE_PROBE_WAIT = 1.0


async def applied_revisions(conn: AsyncConnection) -> frozenset[str]:
    """The migration revisions the database says it is at."""
    rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    return frozenset(row[0] for row in rows)


async def postgres_read_only(conn: AsyncConnection) -> bool:
    """Tell whether this PostgreSQL session refuses writes (a hot standby, or a database set
    read-only)."""
    return bool((await conn.execute(text("SHOW transaction_read_only"))).scalar_one() == "on")


def sqlite_takes_writes(url: str) -> bool:
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
