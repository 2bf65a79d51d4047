"""Retention for the append-only audit log: the one sanctioned way its rows are deleted.

Database triggers (migration 0010) refuse every UPDATE and DELETE on `audit_entry`, and on
PostgreSQL every TRUNCATE. A retention purge lifts them inside its own transaction, deletes,
and puts them back before that transaction commits: no other connection ever sees the table
unguarded (SQLite holds its write lock; PostgreSQL's ALTER TABLE locks the table until
commit), and a failure rolls the whole purge back, guard included. The statements are in
app/admin/repository.py (`guard_lifted`, `delete_entries_before`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from app.admin.repository import delete_entries_before, guard_lifted, insert_entry
from app.core.config import Settings
from app.core.db import create_engine, utcnow

__all__ = ["guard_lifted", "purge", "purge_database"]


async def purge(conn: AsyncConnection, before: datetime) -> int:
    """Delete the entries written before `before` and log the purge; give back how many went."""
    async with guard_lifted(conn):
        deleted = await delete_entries_before(conn, before)
    # The log keeps a trace of its own trimming: no actor, the CLI runs as the operator.
    await insert_entry(
        conn,
        action="purge",
        entity="audit_entry",
        entity_id="*",
        after={"before": before.isoformat(), "deleted": deleted},
        created_at=utcnow(),
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
