"""The engines: one SQLAlchemy engine per database, tuned per dialect, and on SQLite the
process's write turn that every write transaction takes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only
from sqlmodel import SQLModel

from app.core.config import Settings
from app.core.db import inline_sqlite
from app.core.db.errors import leaves_connection_unusable

# Named constraints, so migrations can drop or alter them on both dialects (SQLite batch mode).
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLITE_BUSY_TIMEOUT_MS = 15_000
# The execution option that marks a write session's connection (its BEGIN takes the lock).
WRITE_OPTION = "broadsheet_write"


def is_sqlite(url: str | URL) -> bool:
    """Tell whether a database URL points at SQLite."""
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> str | None:
    """The path of the SQLite file `url` names, or None (PostgreSQL, or in memory)."""
    parsed = make_url(url)
    if not is_sqlite(parsed) or parsed.database in (None, "", ":memory:"):
        return None
    return parsed.database


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
    # stay in the OS cache; the hot reads have a connection of their own (direct_reads).
    cursor.execute("PRAGMA cache_size=-512")
    cursor.close()


def _drop_unusable_connection(context: ExceptionContext) -> None:
    # SQLAlchemy reuses a connection unless its error counts as a disconnect. One that cannot
    # write (SQLite opened the file read-only; PostgreSQL on a standby) never will, so it goes,
    # and the pool opens a fresh one that can once the database is writable again.
    if leaves_connection_unusable(context.original_exception):
        context.is_disconnect = True


class WriteGate:
    """Lets one SQLite writer of this process at a time into a transaction, in arrival order.

    SQLite queues competing writers with its busy handler, which sleeps in steps of up to
    100 ms whatever the lock's real wait: with 32 webhooks at once the app sat idle a third
    of the time. Queueing in-process first leaves only other processes' locks to wait out.

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


def _sqlite_begin(gate: WriteGate, holders: set[int]) -> Callable[[Any], None]:
    def begin(conn: Any) -> None:
        if not conn.get_execution_options().get(WRITE_OPTION):
            # A read: deferred, so WAL lets it run alongside the writer on one snapshot.
            conn.exec_driver_sql("BEGIN")
            return
        # Listeners run inside SQLAlchemy's greenlet, where a coroutine can be awaited.
        await_only(gate.acquire())
        holders.add(id(conn))
        try:
            inline_sqlite.begin_immediate(conn)
        except BaseException:
            _give_turn(gate, holders)(conn)
            raise

    return begin


def _give_turn(gate: WriteGate, holders: set[int]) -> Callable[..., None]:
    # Fired before the driver's COMMIT or ROLLBACK. Known by identity: an invalidated
    # connection still ends its transaction here, but refuses most questions.
    def end(conn: Any, *_args: Any) -> None:
        if id(conn) in holders:
            holders.discard(id(conn))
            gate.release()

    return end


def _take_turns(engine: AsyncEngine, gate: WriteGate) -> None:
    holders: set[int] = set()
    event.listen(engine.sync_engine, "begin", _sqlite_begin(gate, holders))
    for end in ("commit", "rollback"):
        event.listen(engine.sync_engine, end, _give_turn(gate, holders))


def create_engine(
    settings: Settings, gate: WriteGate | None = None, *, write: bool = False
) -> AsyncEngine:
    """Give back an async engine for the configured database, tuned per dialect.

    On SQLite its sessions run on aiosqlite's threads; a `write` engine's transactions take
    `gate` and SQLite's write lock when they begin. Writers get connections of their own: one
    opened while the file was read-only stays read-only, which a reader never notices.
    """
    url = make_url(settings.resolved_database_url)
    if is_sqlite(url):
        if url.database and url.database != ":memory:":
            settings.var_dir.mkdir(parents=True, exist_ok=True)
        # No pre-ping: an SQLite file cannot drop a connection, and the ping costs a thread hop.
        # Every engine hides bound values from its errors, which are logged: a sign-up race's
        # IntegrityError would otherwise carry the password hash and the email.
        engine = create_async_engine(
            url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            hide_parameters=True,
            execution_options={WRITE_OPTION: write},
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        _take_turns(engine, gate or WriteGate())
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


def create_inline_engine(path: str, gate: WriteGate) -> AsyncEngine:
    """Give back an engine whose SQLite connections run on the event loop (inline_sqlite),
    for short write transactions that never span a network call or a password hash."""
    engine = create_async_engine(
        f"sqlite+aiosqlite:///{path}",
        async_creator=inline_sqlite.creator(path),
        hide_parameters=True,
        execution_options={WRITE_OPTION: True},
    )
    _take_turns(engine, gate)
    event.listen(engine.sync_engine, "handle_error", _drop_unusable_connection)
    return engine
