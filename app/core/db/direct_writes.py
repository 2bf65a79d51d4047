"""Single-statement writes straight through the driver, for loops that write at every step.

The newsletter records each message's outcome before the next message's data goes out.
Through a session that is three thread hand-offs on SQLite (BEGIN, UPDATE, COMMIT: about
0.9 ms, measured) or three round trips on PostgreSQL, more than the SMTP exchange itself.
Here each statement commits on its own: the stdlib sqlite3 on the event loop, waiting out a
lock held by another process with asyncio.sleep (never blocking the loop), or one of the
database's PostgreSQL connections. Statements must be safe to run twice: a lost connection
is retried.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from typing import Any, Protocol

from app.core.db.direct_reads import PostgresConnections, SQLiteFile
from app.core.db.engines import WriteGate
from app.core.db.errors import leaves_connection_unusable
from app.core.db.inline_sqlite import is_locked, lock_waits
from app.core.db.statements import Params, Query, Row
from app.core.db.timestamps import as_utc


class DirectWrites(Protocol):
    async def execute(self, query: Query, params: Params) -> list[Row]:
        """Run one statement in its own transaction; give back the rows of its RETURNING."""
        ...

    def ts(self, value: datetime) -> Any: ...

    async def close(self) -> None: ...


class SQLiteWrites(SQLiteFile):
    """Writes on one stdlib connection in autocommit, taking this process's write turn."""

    # No busy handler: it would sleep on the event loop. A lock is waited out in execute().
    PRAGMAS = ("busy_timeout=0", "synchronous=NORMAL", "foreign_keys=ON")

    def __init__(self, gate: WriteGate, path: str) -> None:
        super().__init__(path)
        self.gate = gate

    async def execute(self, query: Query, params: Params) -> list[Row]:
        waits = lock_waits()
        while True:
            async with self.gate.hold():
                try:
                    return self._connection().execute(query.sqlite, params).fetchall()
                except sqlite3.OperationalError as exc:
                    if leaves_connection_unusable(exc):
                        # Opened while the file was read-only: only a new one can write.
                        await self.close()
                        raise
                    pause = next(waits, None) if is_locked(exc) else None
                    if pause is None:
                        raise
            await asyncio.sleep(pause)


class PostgresWrites:
    """Writes on the database's PostgreSQL connections, each statement in autocommit; tasks
    that overlap get connections of their own."""

    def __init__(self, pool: PostgresConnections) -> None:
        self._pool = pool

    async def execute(self, query: Query, params: Params) -> list[Row]:
        return await self._pool.fetch(query, params)

    def ts(self, value: datetime) -> datetime:
        return as_utc(value)

    async def close(self) -> None:
        # The connections belong to the database, which closes it.
        return None
