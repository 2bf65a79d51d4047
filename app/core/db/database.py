"""The database: engines, write and read sessions, and the read side's direct fast path."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

# A module import: app.core.errors itself imports this package's errors module.
from app.core import errors
from app.core.config import Settings
from app.core.db.direct_reads import PostgresConnections, PostgresReads, Reads, SQLiteReads
from app.core.db.direct_writes import DirectWrites, PostgresWrites, SQLiteWrites
from app.core.db.engines import (
    WriteGate,
    create_engine,
    create_inline_engine,
    is_sqlite,
    sqlite_file,
)

# Search on PostgreSQL: the walks' statements fix their plan in their text (search_index.py),
# so they are planned once per connection, never with a sequential scan, and in one process
# (UNION ALL must run its branches in order; parallel workers would take the cores other
# requests run on). Counts are planned for their words each time: whether a word is common
# is in the statistics, and a count's generic plan took 16 ms where a custom one took 1
# (BENCHMARKS.md).
SEARCHES = {
    "plan_cache_mode": "force_generic_plan",
    "enable_seqscan": "off",
    "max_parallel_workers_per_gather": "0",
}
COUNTS = {"plan_cache_mode": "force_custom_plan", "max_parallel_workers_per_gather": "0"}


class Database:
    """The engines and session factories; shared by the API, the worker and the CLI.

    - `session()` is a write session: its transaction begins at its first statement and, on
      SQLite, takes this process's write turn and the file's write lock until it ends. It
      runs on aiosqlite's threads, so a long transaction (an import, a snapshot) leaves the
      event loop serving readers.
    - `session(inline=True)` is the opt-in for short, hot write transactions on SQLite (a
      webhook applied, a delivery claimed): the stdlib driver on the event loop, no thread
      hand-off per statement. Never across a network call or a password hash, since the
      loop stops while it runs. Elsewhere it is an ordinary write session.
    - `session(write=False)` is a read session: one snapshot, no write lock.
    - `reads` is the read side's fast path for indexed point reads (one driver call each),
      and `writes()` its counterpart for one-statement autocommit writes.
    - `search_reads` are the same for search (SEARCHES, COUNTS).
    """

    def __init__(self, settings: Settings) -> None:
        self.url = settings.resolved_database_url
        # Given to every session (`Session.info`): what commit listeners need from the app,
        # such as the caches to clear when content changes (app.core.cache.version).
        self.session_info: dict[str, Any] = {}
        self._gate = WriteGate()
        path = sqlite_file(self.url)
        self.engine = create_engine(settings, self._gate)
        # PostgreSQL's reads and writes share one pool; an SQLite file's writers need their
        # own (an in-memory database is one connection's, so it has one engine).
        self.write_engine = create_engine(settings, self._gate, write=True) if path else self.engine
        self._readers = self._sessions(self.engine)
        self._writers = self._sessions(self.write_engine)
        self._inline_engine = create_inline_engine(path, self._gate) if path else None
        self._inline = self._sessions(self._inline_engine) if self._inline_engine else None
        self._pool: PostgresConnections | None = None
        self.reads: Reads
        self.search_reads: Reads
        if path is not None:
            self.reads = self.search_reads = SQLiteReads(path)
        elif not self.is_sqlite:
            dsn = make_url(self.url).set(drivername="postgresql").render_as_string(False)
            waits = (settings.db_pool_timeout, settings.db_command_timeout)
            self._pool = PostgresConnections(dsn, settings.db_pool_size, *waits)
            self.reads = PostgresReads(self._pool)
            self.search_reads = PostgresReads(
                PostgresConnections(dsn, max(2, settings.db_pool_size // 2), *waits, SEARCHES),
                PostgresConnections(dsn, max(2, settings.db_pool_size // 4), *waits, COUNTS),
            )

    def _sessions(self, engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
        return async_sessionmaker(
            engine,
            class_=AsyncSession,
            expire_on_commit=False,
            autoflush=False,
            info=self.session_info,
        )

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.url)

    @asynccontextmanager
    async def session(
        self, *, write: bool = True, inline: bool = False
    ) -> AsyncIterator[AsyncSession]:
        """Yield a session that commits when the caller finishes and rolls back on error."""
        if not write:
            factory = self._readers
        elif inline and self._inline is not None:
            factory = self._inline
        else:
            factory = self._writers
        async with factory() as session:
            try:
                yield session
                await session.commit()
            except errors.AppError as exc:
                await (session.commit() if exc.keep_writes else session.rollback())
                raise
            except BaseException:
                await session.rollback()
                raise

    def writes(self) -> DirectWrites:
        """Give back direct one-statement writes; close them when done."""
        path = sqlite_file(self.url)
        if path is not None:
            return SQLiteWrites(self._gate, path)
        if self._pool is None:
            raise ValueError("direct writes need an SQLite file, not an in-memory database")
        return PostgresWrites(self._pool)

    async def dispose(self) -> None:
        if hasattr(self, "reads"):
            await self.reads.close()
        if hasattr(self, "search_reads") and self.search_reads is not self.reads:
            await self.search_reads.close()
        await self.engine.dispose()
        if self.write_engine is not self.engine:
            await self.write_engine.dispose()
        if self._inline_engine is not None:
            await self._inline_engine.dispose()
