"""SQLite connections that run on the event loop thread, behind SQLAlchemy's aiosqlite dialect.

aiosqlite runs every statement on a thread of its own and hands the result back through the
event loop. For a write transaction that is one hand-off per statement (BEGIN, each SELECT
and UPDATE, COMMIT) while the file's write lock is held, and under load each hand-off waits
behind every other request the loop has ready: a webhook's transaction took 3 ms idle and
12 ms at 32 deliveries at once, and SQLite lets one writer in at a time. Writes here run on
the loop instead, so a transaction goes from BEGIN to COMMIT without yielding.

This is for write sessions only, which this process already lets in one at a time. They are
short; a lock held by another process is waited out with asyncio.sleep at BEGIN IMMEDIATE
(busy_timeout is 0, so SQLite itself never sleeps on the loop). Reads stay on aiosqlite,
whose thread lets a long query run while the loop serves others.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy.util import await_only

# The longest a writer waits for another process to release the file's write lock.
LOCK_WAIT_SECONDS = 15.0


class _Cursor:
    """aiosqlite's cursor API over a stdlib cursor; every coroutine finishes without waiting."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> _Cursor:
        self._cursor.executemany(sql, rows)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """aiosqlite's connection API over a stdlib connection used on the calling thread."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def cursor(self) -> _Cursor:
        return _Cursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        return _Cursor(self._conn.execute(sql, parameters))

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()

    def stop(self) -> None:
        self._conn.close()


def creator(path: str) -> Callable[[], Any]:
    """Give back an `async_creator` for create_async_engine opening inline connections."""

    async def connect() -> InlineConnection:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        for pragma in ("busy_timeout=0", "foreign_keys=ON", "synchronous=NORMAL"):
            conn.execute(f"PRAGMA {pragma}")
        return InlineConnection(conn)

    return connect


def lock_waits() -> Iterator[float]:
    """The pauses between tries while another process holds the write lock: 1 ms doubling
    to 50 ms, for LOCK_WAIT_SECONDS in all. Shared by every writer that never lets SQLite's
    busy handler sleep on the event loop."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.001
    while time.monotonic() < deadline:
        yield pause
        pause = min(pause * 2, 0.05)


def is_locked(exc: Exception) -> bool:
    """Tell whether an SQLite error means another connection holds the lock."""
    return "locked" in str(exc)


def begin_immediate(conn: Any) -> None:
    """Take the write lock (SQLAlchemy `begin` listener), sleeping on the loop between tries
    while another process holds it."""
    waits = lock_waits()
    while True:
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            return
        except Exception as exc:
            pause = next(waits, None) if is_locked(exc) else None
            if pause is None:
                raise
        # Listeners run inside SQLAlchemy's greenlet, where a coroutine can be awaited.
        await_only(asyncio.sleep(pause))
