"""Retention for the append-only audit log: the one sanctioned way its rows are deleted.

Database triggers (migration 0010) refuse every UPDATE and DELETE on `audit_entry`, and on
PostgreSQL every TRUNCATE. A retention purge lifts them inside its own transaction, deletes,
and puts them back before that transaction commits: no other connection ever sees the table
unguarded (SQLite holds its write lock; PostgreSQL's ALTER TABLE locks the table until
commit), and a failure rolls the whole purge back, guard included.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy import delete, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from app.admin.models import AuditEntry
from app.core.config import Settings
from app.core.db import create_engine, utcnow

_ENTRIES = AuditEntry.__table__  # type: ignore[attr-defined]
_SQLITE_TRIGGERS = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entry'"
)


@asynccontextmanager
async def guard_lifted(conn: AsyncConnection) -> AsyncIterator[None]:
    """Let DELETE reach `audit_entry` inside the caller's transaction; the guard is back
    before the block ends (a failure inside it rolls back to the guarded state)."""
    # A savepoint: even a driver that has not begun a transaction yet (pysqlite's legacy
    # mode runs DDL in autocommit) drops and re-creates the triggers as one unit.
    async with conn.begin_nested():
        if conn.dialect.name == "sqlite":
            # SQLite cannot disable a trigger: drop them and re-create them from the SQL the
            # migration stored, so their definition lives in one place.
            triggers = (await conn.exec_driver_sql(_SQLITE_TRIGGERS)).all()
            for name, _sql in triggers:
                await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            yield
            for _name, sql in triggers:
                await conn.exec_driver_sql(sql)
        else:
            # USER: ours only, not the internal triggers that enforce foreign keys.
            await conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER USER")
            yield
            await conn.exec_driver_sql("ALTER TABLE audit_entry ENABLE TRIGGER USER")


async def purge(conn: AsyncConnection, before: datetime) -> int:
    """Delete the entries written before `before` and log the purge; give back how many went."""
    async with guard_lifted(conn):
        result = await conn.execute(delete(_ENTRIES).where(_ENTRIES.c.created_at < before))
    deleted = int(result.rowcount)
    # The log keeps a trace of its own trimming: no actor, the CLI runs as the operator.
    await conn.execute(
        insert(_ENTRIES).values(
            action="purge",
            entity="audit_entry",
            entity_id="*",
            after={"before": before.isoformat(), "deleted": deleted},
            created_at=utcnow(),
        )
    )
    return deleted


async def purge_database(settings: Settings, before: datetime) -> int:
    """Run `purge` in one transaction on the configured database."""
    engine = create_engine(settings)
    try:
        async with engine.begin() as conn:
            return await purge(conn, before)
    finally:
        await engine.dispose()
