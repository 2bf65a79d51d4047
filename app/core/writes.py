"""Single-statement writes straight through the driver, for loops that write at every step.

The newsletter records each message's outcome before the next message's data goes out.
Through a session that is three thread hand-offs on SQLite (BEGIN, UPDATE, COMMIT: about
0.9 ms, measured) or three round trips on PostgreSQL, more than the SMTP exchange itself.
Here each statement commits on its own: the stdlib sqlite3 on the event loop, waiting out a
lock held by another process with asyncio.sleep (never blocking the loop), or one asyncpg
connection. Statements must be safe to run twice: a lost PostgreSQL connection is retried.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url

from app.core.db import Database, as_utc
from app.core.db_errors import leaves_connection_unusable
from app.core.inline_sqlite import is_locked, lock_waits
from app.core.reads import CONNECTION_LOST, Params, Query, Row, SQLiteFile


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

    def __init__(self, db: Database, path: str) -> None:
        super().__init__(path)
        self.db = db

    async def execute(self, query: Query, params: Params) -> list[Row]:
        waits = lock_waits()
        while True:
            async with self.db.write_turn():
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
    """Writes on one asyncpg connection of their own, in autocommit."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._conn: asyncpg.Connection | None = None

    async def execute(self, query: Query, params: Params) -> list[Row]:
        sql, args = query.for_postgres(params)
        try:
            records = await self._fetch(sql, args)
        except CONNECTION_LOST:
            await self.close()
            records = await self._fetch(sql, args)
        return [tuple(record) for record in records]

    async def _fetch(self, sql: str, args: list[Any]) -> list[asyncpg.Record]:
        try:
            return await (await self._connection()).fetch(sql, *args)
        except asyncpg.PostgresError as exc:
            # A connection to a server that takes no writes (a standby) never will.
            if leaves_connection_unusable(exc):
                await self.close()
            raise

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(self.dsn)
        return self._conn

    def ts(self, value: datetime) -> datetime:
        return as_utc(value)

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.terminate()


def open_writes(db: Database) -> DirectWrites:
    """Give back direct writes to `db`'s database; close them when done."""
    url = make_url(db.url)
    if db.is_sqlite:
        if not url.database or url.database == ":memory:":
            raise ValueError("direct writes need an SQLite file, not an in-memory database")
        return SQLiteWrites(db, url.database)
    return PostgresWrites(url.set(drivername="postgresql").render_as_string(hide_password=False))
