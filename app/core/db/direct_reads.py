"""The read side's fast path: point reads straight through the driver, one call per query.

Profiling the article page showed the time going to thread hand-offs (aiosqlite runs each
connection on its own thread, and with many of them the event loop waits on the GIL), not
to SQLite. Small indexed reads are cheaper done right on the event loop with the stdlib
driver; on PostgreSQL they go through asyncpg's pool. Writes never come here.

Queries are `Query` objects (`:name` parameters); timestamps cross as `ts()` and come back
through `parse_ts()`, so callers see aware UTC datetimes on both databases.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from app.core.db.errors import leaves_connection_unusable
from app.core.db.statements import Params, Query, Row
from app.core.db.timestamps import as_utc, sqlite_ts

# A point read never waits long: WAL readers only block while a crashed writer's log is
# recovered, and the event loop must not stall behind that.
_SQLITE_BUSY_MS = 200


class ReadsUnavailable(ConnectionError):
    """The database could not answer a direct read (the app answers 503)."""


class Reads(Protocol):
    async def one(self, query: Query, params: Params) -> Row | None: ...

    async def all(self, query: Query, params: Params) -> list[Row]: ...

    def ts(self, value: datetime) -> Any: ...

    async def close(self) -> None: ...


class SQLiteFile:
    """One stdlib connection to an SQLite file in autocommit, opened on first use and used
    on the event loop thread; subclasses name its pragmas."""

    PRAGMAS: tuple[str, ...] = ()

    def __init__(self, path: str) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            for pragma in self.PRAGMAS:
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
        return self._conn

    def ts(self, value: datetime) -> str:
        return sqlite_ts(value)

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SQLiteReads(SQLiteFile):
    """Reads on one stdlib connection, run on the event loop thread (query_only)."""

    PRAGMAS = (f"busy_timeout={_SQLITE_BUSY_MS}", "query_only=ON")

    async def one(self, query: Query, params: Params) -> Row | None:
        try:
            row: Row | None = self._connection().execute(query.sqlite, params).fetchone()
        except sqlite3.OperationalError as exc:
            raise ReadsUnavailable(str(exc)) from exc
        return row

    async def all(self, query: Query, params: Params) -> list[Row]:
        try:
            return self._connection().execute(query.sqlite, params).fetchall()
        except sqlite3.OperationalError as exc:
            raise ReadsUnavailable(str(exc)) from exc


CONNECTION_LOST = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    # A connection killed while idle can surface as a protocol state error on its next use.
    asyncpg.exceptions.InternalClientError,
)


async def _keep_session_state(_conn: asyncpg.Connection) -> None:
    # The pool's default reset runs a query on every release. These connections only ever
    # run single autocommit statements and set nothing, so there is nothing to reset.
    return None


class PostgresPool:
    """asyncpg's pool, opened on first use, with bounded waits: a connection is handed out
    within `acquire_timeout` and a statement answers within `command_timeout`, so a hung
    server or connection costs a reader a 503, never a stalled request."""

    def __init__(self, dsn: str, size: int, acquire_timeout: float, command_timeout: float) -> None:
        self.dsn = dsn
        self.size = size
        self.acquire_timeout = acquire_timeout
        self.command_timeout = command_timeout
        self._pool: asyncpg.Pool | None = None
        self._opening: asyncio.Lock | None = None

    async def _opened(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        self._opening = self._opening or asyncio.Lock()
        async with self._opening:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.dsn,
                    min_size=0,
                    max_size=self.size,
                    reset=_keep_session_state,
                    command_timeout=self.command_timeout,
                )
        return self._pool

    async def fetch(self, query: Query, params: Params) -> list[Row]:
        """Run `query` once on a pooled connection; a dropped connection is retried once
        (callers' statements are safe to run twice)."""
        sql, args = query.for_postgres(params)
        try:
            return await self._fetch_once(sql, args)
        except CONNECTION_LOST:
            # A connection the server dropped (restart, failover, idle kill) fails on its
            # next use and is closed by the pool.
            pass
        try:
            return await self._fetch_once(sql, args)
        except CONNECTION_LOST as exc:
            raise ReadsUnavailable(type(exc).__name__) from exc

    async def _fetch_once(self, sql: str, args: list[Any]) -> list[Row]:
        pool = await self._opened()
        async with pool.acquire(timeout=self.acquire_timeout) as conn:
            try:
                records = await conn.fetch(sql, *args)
            except asyncpg.PostgresError as exc:
                # A connection to a server that takes no writes (a standby) never will:
                # closed here, the pool opens a fresh one next time.
                if leaves_connection_unusable(exc):
                    conn.terminate()
                raise
        return [tuple(record) for record in records]

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()


class PostgresReads:
    """Reads on the pool."""

    def __init__(self, pool: PostgresPool) -> None:
        self._pool = pool

    @property
    def dsn(self) -> str:
        return self._pool.dsn

    async def one(self, query: Query, params: Params) -> Row | None:
        rows = await self._pool.fetch(query, params)
        return rows[0] if rows else None

    async def all(self, query: Query, params: Params) -> list[Row]:
        return await self._pool.fetch(query, params)

    def ts(self, value: datetime) -> datetime:
        return as_utc(value)

    async def close(self) -> None:
        await self._pool.close()
