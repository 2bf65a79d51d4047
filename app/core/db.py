"""The database: async engine, session factory and the request-scoped session dependency."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import event, insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import object_session
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.dml import Insert
from sqlalchemy.util import await_only
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core import inline_sqlite
from app.core.config import Settings
from app.core.db_errors import leaves_connection_unusable
from app.core.errors import AppError

# Named constraints, so migrations can drop or alter them on both dialects (SQLite batch mode).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 15_000
T = TypeVar("T")


def dialect_insert(session: Any, model: Any) -> Any:
    """Give back the session's dialect's INSERT for `model` (it knows ON CONFLICT)."""
    if session.get_bind().dialect.name == "sqlite":
        return sqlite_insert(model)
    return pg_insert(model)


_ON_CONFLICT_DO_NOTHING = text("ON CONFLICT DO NOTHING")


def insert_ignoring_duplicates(model: Any) -> Insert:
    """Give back an INSERT into `model`'s table that skips rows violating a unique key.

    The same SQL on SQLite and PostgreSQL, and cached once compiled: SQLAlchemy never caches
    the dialects' own INSERT ... ON CONFLICT (each use compiled anew, ~0.7 ms a webhook).
    """
    statement = insert(model.__table__)
    # Where the dialects put their ON CONFLICT clause: after VALUES, before any RETURNING,
    # and part of the statement's cache key.
    statement._post_values_clause = _ON_CONFLICT_DO_NOTHING
    return statement


def utcnow() -> datetime:
    """Give back the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def pk(value: int | None) -> int:
    """Give back a row's primary key, which exists once the row is flushed."""
    if value is None:
        raise RuntimeError("the row has no primary key yet; flush it first")
    return value


def adopt(session: AsyncSession, entity: T) -> T:
    """Give back `entity`, moved from the session it was read in into `session` (no query):
    rows read before a write transaction begins are written through the write session."""
    current = object_session(entity)
    if current is not None and current is not session.sync_session:
        current.expunge(entity)
    session.add(entity)
    return entity


def as_utc(value: datetime) -> datetime:
    """Give back `value` as aware UTC; SQLite hands back naive datetimes that are UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def is_sqlite(url: str | URL) -> bool:
    """Tell whether a database URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # aiosqlite's adapter would otherwise open an implicit transaction before PRAGMA.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # Up to fifteen of these pooled connections each kept SQLite's default 2 MB page cache:
    # about 30 MB of a worker's memory that the response cache uses better. The file's pages
    # stay in the OS cache; the hot reads have a connection of their own (app/core/reads.py).
    cursor.execute("PRAGMA cache_size=-512")
    cursor.close()


def _drop_unusable_connection(context: ExceptionContext) -> None:
    # SQLAlchemy reuses a connection unless its error counts as a disconnect. One that cannot
    # write (SQLite opened the file read-only; PostgreSQL on a standby) never will, so it goes,
    # and the pool opens a fresh one that can once the database is writable again.
    if leaves_connection_unusable(context.original_exception):
        context.is_disconnect = True


def _sqlite_begin(conn: Any) -> None:
    # The pragmas put the driver in autocommit; a session's reads still need one snapshot.
    # Deferred, so WAL lets readers run alongside the writer (writers begin IMMEDIATE on
    # their own connections, see inline_sqlite).
    conn.exec_driver_sql("BEGIN")


def create_engine(settings: Settings) -> AsyncEngine:
    """Give back an async engine for the configured database, tuned per dialect."""
    url = make_url(settings.resolved_database_url)
    if is_sqlite(url):
        if url.database and url.database != ":memory:":
            settings.var_dir.mkdir(parents=True, exist_ok=True)
        # No pre-ping: an SQLite file cannot drop a connection, and the ping costs a thread hop.
        # Every engine hides bound values from its errors, which are logged: a sign-up race's
        # IntegrityError would otherwise carry the password hash and the email.
        engine = create_async_engine(
            url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, hide_parameters=True
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        event.listen(engine.sync_engine, "handle_error", _drop_unusable_connection)
        return engine
    engine = create_async_engine(
        url,
        pool_pre_ping=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=1800,
        hide_parameters=True,
    )
    event.listen(engine.sync_engine, "handle_error", _drop_unusable_connection)
    return engine


class _WriteGate:
    """Lets one SQLite writer of this process at a time into a transaction, in arrival order.

    SQLite queues competing writers with its busy handler, which sleeps in steps of up to
    100 ms whatever the lock's real wait: with 32 webhooks at once the app sat idle a third
    of the time. Queueing in-process first leaves only other processes' locks to wait out
    (inline_sqlite retries BEGIN IMMEDIATE with asyncio.sleep).

    A write session takes its turn when its transaction begins (its first statement) and
    gives it back when the transaction ends, so whatever a request does before its first
    statement (hashing a password, asking Stripe) holds up no other writer.
    Re-entrant per task, so a write opened inside another cannot wait on itself.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    async def acquire(self) -> None:
        task = asyncio.current_task()
        if task is None or task is not self._owner:
            await self._lock.acquire()
            self._owner = task
        self._depth += 1

    def release(self) -> None:
        self._depth -= 1
        if self._depth == 0:
            self._owner = None
            self._lock.release()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        await self.acquire()
        try:
            yield
        finally:
            self.release()


def _take_turn(gate: _WriteGate, holders: set[int]) -> Callable[[Any], None]:
    def begin(conn: Any) -> None:
        # Listeners run inside SQLAlchemy's greenlet, where a coroutine can be awaited.
        await_only(gate.acquire())
        holders.add(id(conn))
        try:
            inline_sqlite.begin_immediate(conn)
        except BaseException:
            _give_turn(gate, holders)(conn)
            raise

    return begin


def _give_turn(gate: _WriteGate, holders: set[int]) -> Callable[..., None]:
    # Fired before the driver's COMMIT or ROLLBACK, which run without yielding to the loop,
    # so no other writer of this process can begin in between. Known by identity: an
    # invalidated connection still ends its transaction here, but refuses most questions.
    def end(conn: Any, *_args: Any) -> None:
        if id(conn) in holders:
            holders.discard(id(conn))
            gate.release()

    return end


class Database:
    """One engine and its session factory; shared by the API, the worker and the CLI."""

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_database_url
        self.engine = create_engine(settings)
        self.sessionmaker = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )
        self._write_gate = _WriteGate() if self.is_sqlite else None
        self._inline_engine = self._sqlite_write_engine()
        self.write_engine = self._inline_engine or self.engine
        self.write_sessionmaker = async_sessionmaker(
            self.write_engine, class_=AsyncSession, expire_on_commit=False, autoflush=False
        )

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    def _sqlite_write_engine(self) -> AsyncEngine | None:
        """Writes to an SQLite file run on the event loop (see inline_sqlite); None elsewhere."""
        url = make_url(self.url)
        if self._write_gate is None or url.database in (None, "", ":memory:"):
            return None
        engine = create_async_engine(
            url, async_creator=inline_sqlite.creator(url.database), hide_parameters=True
        )
        holders: set[int] = set()
        event.listen(engine.sync_engine, "begin", _take_turn(self._write_gate, holders))
        for end in ("commit", "rollback"):
            event.listen(engine.sync_engine, end, _give_turn(self._write_gate, holders))
        event.listen(engine.sync_engine, "handle_error", _drop_unusable_connection)
        return engine

    def write_turn(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for this process's turn to write (SQLite; PostgreSQL has no turns)."""
        if self._write_gate is None:
            return contextlib.nullcontext()
        return self._write_gate.hold()

    @asynccontextmanager
    async def session(self, *, write: bool = True) -> AsyncIterator[AsyncSession]:
        """Yield a session that commits when the caller finishes and rolls back on error.

        A write session begins its transaction, and on SQLite takes this process's write
        turn, at its first statement, not when it is opened.
        """
        factory = self.write_sessionmaker if write else self.sessionmaker
        async with factory() as session:
            try:
                yield session
                await session.commit()
            except AppError as exc:
                await (session.commit() if exc.keep_writes else session.rollback())
                raise
            except BaseException:
                await session.rollback()
                raise

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self._inline_engine is not None:
            await self._inline_engine.dispose()
