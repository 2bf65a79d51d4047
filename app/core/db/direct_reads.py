"""The read side's fast path: point reads straight through the driver, one call per query.

Profiling the article page showed the time going to thread hand-offs (aiosqlite runs each
connection on its own thread, and with many of them the event loop waits on the GIL), not
to SQLite. Small indexed reads are cheaper done right on the event loop with the stdlib
driver; on PostgreSQL they go through a few asyncpg connections of their own. Writes never
come here.

Queries are `Query` objects (`:name` parameters); timestamps cross as `ts()` and come back
through `parse_ts()`, so callers see aware UTC datetimes on both databases.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import deque
from datetime import datetime
from typing import Any, Protocol

import asyncpg

from app.core.db.errors import leaves_connection_unusable
from app.core.db.gathered import Gathered, Gatherer
from app.core.db.statements import Params, Query, Row
from app.core.db.timestamps import as_utc, sqlite_ts

# A point read never waits long: WAL readers only block while a crashed writer's log is
# recovered, and the event loop must not stall behind that.
_SQLITE_BUSY_MS = 200
# Batches of one gathered read on their way at once: while they are, keys gather for the
# next (1t measured 1, 2 and 4 alike, and the mixed views' p99 no better with 6). A batch
# reads at most GATHERED_MOST keys, so a crowd of readers never makes one statement's answer
# megabytes long.
GATHERED_IN_FLIGHT = 2
GATHERED_MOST = 100


class ReadsUnavailable(ConnectionError):
    """The database could not answer a direct read (the app answers 503)."""


class Reads(Protocol):
    dialect: str  # "sqlite" or "postgresql", as SQLAlchemy names them

    async def one(self, query: Query, params: Params) -> Row | None: ...

    async def all(self, query: Query, params: Params) -> list[Row]: ...

    async def gathered(self, read: Gathered, params: Params) -> list[Row]:
        """The rows of `params[read.key]` without their key column; on PostgreSQL read in
        one statement with the other keys asked for meanwhile."""
        ...

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
    dialect = "sqlite"

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

    async def gathered(self, read: Gathered, params: Params) -> list[Row]:
        return [row[1:] for row in await self.all(read.query, params)]


CONNECTION_LOST = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # admin shutdown, cannot connect now
    # A connection killed while idle can surface as a protocol state error on its next use.
    asyncpg.exceptions.InternalClientError,
)


class PostgresConnections:
    """A few asyncpg connections for single autocommit statements, opened on first use:
    idle ones on a stack, up to `size` open, callers queued in order when all are busy.

    Waits are bounded: a queued caller gets a connection within `acquire_timeout` and a
    statement answers within `command_timeout`, so a hung server or connection costs a
    reader a 503, never a stalled request. asyncpg's own pool does the same with a timeout
    context, a shielded release task and a queue per use: `python -m bench.pool_ab` measured
    it at about 0.6 of this stack's point reads per second. These connections never hold a
    transaction or session state, so there is nothing to reset; one that fails or is
    interrupted mid-statement is closed rather than reused.
    """

    def __init__(
        self,
        dsn: str,
        size: int,
        acquire_timeout: float,
        command_timeout: float,
        server_settings: dict[str, str] | None = None,
    ) -> None:
        self.dsn = dsn
        self.size = size
        self.server_settings = server_settings
        self.acquire_timeout = acquire_timeout
        self.command_timeout = command_timeout
        self._idle: list[asyncpg.Connection] = []
        self._opened = 0
        # A waiter gets a connection, or None: a slot was freed and it may open its own.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def fetch(self, query: Query, params: Params) -> list[Row]:
        """Run `query` once on a connection; a dropped connection is retried once (callers'
        statements are safe to run twice)."""
        sql, args = query.for_postgres(params)
        try:
            return await self._fetch_once(sql, args)
        except ReadsUnavailable:
            raise  # no connection free in time: another wait would double it
        except CONNECTION_LOST:
            # A connection the server dropped (restart, failover, idle kill) fails on its
            # next use and is closed.
            pass
        try:
            return await self._fetch_once(sql, args)
        except CONNECTION_LOST as exc:
            raise ReadsUnavailable(type(exc).__name__) from exc

    async def _fetch_once(self, sql: str, args: list[Any]) -> list[Row]:
        conn = await self._take()
        try:
            records = await conn.fetch(sql, *args)
        except asyncpg.PostgresError as exc:
            # A connection to a server that takes no writes (a standby) never will.
            if leaves_connection_unusable(exc):
                self._discard(conn)
            else:
                self._give(conn)
            raise
        except BaseException:
            self._discard(conn)
            raise
        self._give(conn)
        return [tuple(record) for record in records]

    async def _take(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise ReadsUnavailable("the connections are closed")
            if self._idle:
                return self._idle.pop()
            if self._opened < self.size:
                return await self._open()
            handed = await self._wait_for_turn()
            if handed is not None:
                return handed

    async def _open(self) -> asyncpg.Connection:
        self._opened += 1
        try:
            conn: asyncpg.Connection = await asyncpg.connect(
                self.dsn,
                command_timeout=self.command_timeout,
                timeout=self.acquire_timeout,
                server_settings=self.server_settings,
            )
        except BaseException:
            self._lose_slot()
            raise
        return conn

    async def _wait_for_turn(self) -> asyncpg.Connection | None:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[asyncpg.Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        # A timer handle, not asyncio.timeout(): this path runs on most reads under load.
        deadline = loop.call_later(self.acquire_timeout, _give_up, waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._hand_on(waiter.result())
            raise
        finally:
            deadline.cancel()

    def _give(self, conn: asyncpg.Connection) -> None:
        if self._closed:
            conn.terminate()
            self._opened -= 1
            return
        self._hand_on(conn)

    def _discard(self, conn: asyncpg.Connection) -> None:
        conn.terminate()
        self._lose_slot()

    def _hand_on(self, conn: asyncpg.Connection | None) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        if conn is not None:
            self._idle.append(conn)

    def _lose_slot(self) -> None:
        self._opened -= 1
        self._hand_on(None)

    async def close(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._opened -= 1
            await conn.close()
        while self._waiters:
            self._waiters.popleft().cancel()


def _give_up(waiter: asyncio.Future[asyncpg.Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(ReadsUnavailable("no connection free within the acquire timeout"))


class PostgresReads:
    """Reads on the database's PostgreSQL connections; with `per_call`, the statements
    `planned_per_call` run on those connections instead."""

    dialect = "postgresql"

    def __init__(
        self,
        pool: PostgresConnections,
        per_call: PostgresConnections | None = None,
        *,
        gathered_in_flight: int = GATHERED_IN_FLIGHT,
        gathered_most: int = GATHERED_MOST,
    ):
        self._pool = pool
        self._per_call = per_call or pool
        self._gathered = (gathered_in_flight, gathered_most)
        self._gatherers: dict[Gathered, Gatherer] = {}

    @property
    def dsn(self) -> str:
        return self._pool.dsn

    def _for(self, query: Query) -> PostgresConnections:
        return self._per_call if query.planned_per_call else self._pool

    async def one(self, query: Query, params: Params) -> Row | None:
        rows = await self._for(query).fetch(query, params)
        return rows[0] if rows else None

    async def all(self, query: Query, params: Params) -> list[Row]:
        return await self._for(query).fetch(query, params)

    async def gathered(self, read: Gathered, params: Params) -> list[Row]:
        gatherer = self._gatherers.get(read)
        if gatherer is None:
            gatherer = Gatherer(read, self.all, *self._gathered)
            self._gatherers[read] = gatherer
        return await gatherer.rows(params)

    def ts(self, value: datetime) -> datetime:
        return as_utc(value)

    async def close(self) -> None:
        for gatherer in self._gatherers.values():
            await gatherer.close()
        await self._pool.close()
        if self._per_call is not self._pool:
            await self._per_call.close()
