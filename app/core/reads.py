"""Direct reads for the hot reader paths, under the ORM: one driver call per query.

Profiling the article page showed the time going to thread hand-offs (aiosqlite runs each
connection on its own thread, and with many of them the event loop waits on the GIL), not
to SQLite. Small indexed reads are cheaper done right on the event loop with the stdlib
driver; on PostgreSQL they go through an asyncpg pool of their own. Writes never come here.

Queries are written once per dialect with `:name` parameters; timestamps cross as `ts()` and
come back through `parse_ts()`, so callers see aware UTC datetimes on both databases.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import asyncpg
from sqlalchemy.engine import make_url

from app.core.db import as_utc, is_sqlite

Row = tuple[Any, ...]
Params = dict[str, Any]
_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")
# A point read never waits long: WAL readers only block while a crashed writer's log is
# recovered, and the event loop must not stall behind that.
_SQLITE_BUSY_MS = 200


class ReadsUnavailable(ConnectionError):
    """The database could not answer a direct read (the app answers 503)."""


@dataclass(frozen=True)
class Query:
    """One read, in each dialect's SQL, with the same `:name` parameters and columns."""

    sqlite: str
    postgres: str
    _pg_sql: str = field(init=False, repr=False)
    _pg_names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        object.__setattr__(self, "_pg_sql", _NAMED.sub(number, self.postgres))
        object.__setattr__(self, "_pg_names", tuple(names))

    @classmethod
    def portable(cls, sql: str) -> Query:
        """A read whose SQL is the same on both databases."""
        return cls(sqlite=sql, postgres=sql)

    def for_postgres(self, params: Params) -> tuple[str, list[Any]]:
        return self._pg_sql, [params[name] for name in self._pg_names]


class Reads(Protocol):
    async def one(self, query: Query, params: Params) -> Row | None: ...

    async def all(self, query: Query, params: Params) -> list[Row]: ...

    def ts(self, value: datetime) -> Any: ...

    async def close(self) -> None: ...


def sqlite_ts(value: datetime) -> str:
    """`value` in SQLAlchemy's SQLite DateTime storage format, which stored values compare
    against."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def parse_ts(value: Any) -> datetime | None:
    """Give back a timestamp read by either driver as aware UTC (None stays None)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(value))


def parse_required_ts(value: Any) -> datetime:
    """Give back a NOT NULL timestamp column's value as aware UTC."""
    parsed = parse_ts(value)
    if parsed is None:
        raise ValueError("a NOT NULL timestamp came back NULL")
    return parsed


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


class _Connections:
    """asyncpg connections for single autocommit reads: idle ones on a stack, up to `size`
    opened on demand, callers queued in order when all are busy.

    asyncpg's own pool wraps every use in a timeout, a shielded release task and a reset
    query: py-spy put acquire and release at ~12 % of a paying reader's request. These
    connections never hold a transaction or session state, so there is nothing to reset; one
    that fails or is interrupted mid-query is closed rather than reused.
    """

    def __init__(self, dsn: str, size: int) -> None:
        self.dsn = dsn
        self.size = size
        self._idle: list[asyncpg.Connection] = []
        self._opened = 0
        # A waiter gets a connection, or None: a slot was freed and it may open its own.
        self._waiters: deque[asyncio.Future[asyncpg.Connection | None]] = deque()
        self._closed = False

    async def take(self) -> asyncpg.Connection:
        while True:
            if self._closed:
                raise ReadsUnavailable("the reads are closed")
            if self._idle:
                return self._idle.pop()
            if self._opened < self.size:
                self._opened += 1
                try:
                    conn: asyncpg.Connection = await asyncpg.connect(self.dsn)
                except BaseException:
                    self._lose_slot()
                    raise
                return conn
            waiter: asyncio.Future[asyncpg.Connection | None] = (
                asyncio.get_running_loop().create_future()
            )
            self._waiters.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._hand_on(waiter.result())
                raise
            if handed is not None:
                return handed

    def give(self, conn: asyncpg.Connection) -> None:
        """Take back a connection whose read finished cleanly."""
        if self._closed:
            conn.terminate()
            self._opened -= 1
            return
        self._hand_on(conn)

    def discard(self, conn: asyncpg.Connection) -> None:
        """Close a connection that failed or was interrupted; its slot goes to a waiter."""
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


class PostgresReads:
    """Reads on a few asyncpg connections of their own, opened on first use."""

    def __init__(self, dsn: str, size: int) -> None:
        self._connections = _Connections(dsn, size)

    async def one(self, query: Query, params: Params) -> Row | None:
        rows = await self._fetch(query, params)
        return rows[0] if rows else None

    async def all(self, query: Query, params: Params) -> list[Row]:
        return await self._fetch(query, params)

    async def _fetch(self, query: Query, params: Params) -> list[Row]:
        sql, args = query.for_postgres(params)
        try:
            return await self._fetch_once(sql, args)
        except CONNECTION_LOST:
            # A connection the server dropped (restart, failover, idle kill) fails on its
            # next use and is closed; a read changes nothing, so retry once.
            pass
        try:
            return await self._fetch_once(sql, args)
        except CONNECTION_LOST as exc:
            raise ReadsUnavailable(type(exc).__name__) from exc

    async def _fetch_once(self, sql: str, args: list[Any]) -> list[Row]:
        conn = await self._connections.take()
        try:
            records = await conn.fetch(sql, *args)
        except BaseException:
            self._connections.discard(conn)
            raise
        self._connections.give(conn)
        return [tuple(r) for r in records]

    def ts(self, value: datetime) -> datetime:
        return as_utc(value)

    async def close(self) -> None:
        await self._connections.close()


def build_reads(database_url: str, pool_size: int) -> Reads:
    """Give back direct reads for the configured database."""
    url = make_url(database_url)
    if is_sqlite(url):
        if not url.database or url.database == ":memory:":
            raise ValueError("direct reads need an SQLite file, not an in-memory database")
        return SQLiteReads(url.database)
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    return PostgresReads(dsn, pool_size)
