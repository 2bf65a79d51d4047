"""SQLite's inline write sessions (the opt-in) run on the event loop: a transaction never
yields between its statements, and a lock held by another process is waited out while the
loop keeps running. Ordinary write sessions run on aiosqlite's threads and leave the loop
free while they work."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from fastapi import FastAPI
from sqlalchemy.exc import OperationalError

from app.core.cache.version import ContentVersion
from app.core.db import Database, inline_sqlite
from tests.core.sqlite_lock import assert_waits_out_a_held_lock


def _sqlite(app: FastAPI) -> Database:
    db: Database = app.state.db
    if not db.is_sqlite:
        pytest.skip("SQLite's writers; PostgreSQL sessions are asyncpg round trips")
    return db


async def _version(db: Database) -> int:
    async with db.session(write=False) as session:
        row = await session.get(ContentVersion, 1)
        return row.version if row is not None else -1


async def _set(db: Database, version: int, *, inline: bool = True) -> None:
    async with db.session(inline=inline) as session:
        await session.merge(ContentVersion(id=1, version=version))


async def test_an_inline_write_transaction_never_yields_to_the_loop(app: FastAPI) -> None:
    db = _sqlite(app)
    await _set(db, 1)
    ran: list[str] = []

    async def other_request() -> None:
        ran.append("other")

    async with db.session(inline=True) as session:
        other = asyncio.create_task(other_request())
        row = await session.get(ContentVersion, 1)
        assert row is not None
        row.version = 2
        session.add(row)
        await session.flush()
        await session.get(ContentVersion, 1)
        # Through aiosqlite each statement above waited on the loop, and the task ran.
        assert ran == []
    await other
    assert ran == ["other"]
    assert await _version(db) == 2


async def test_an_ordinary_write_transaction_leaves_the_loop_to_others(app: FastAPI) -> None:
    """A long write (an import, a snapshot) must not stop the readers the loop serves."""
    db = _sqlite(app)
    await _set(db, 1, inline=False)
    ran: list[str] = []

    async def other_request() -> None:
        ran.append("other")

    async with db.session() as session:
        other = asyncio.create_task(other_request())
        row = await session.get(ContentVersion, 1)
        assert row is not None
        row.version = 2
        session.add(row)
        await session.flush()
        assert ran == ["other"]
    await other
    assert await _version(db) == 2


async def test_a_lock_held_elsewhere_is_waited_out_while_the_loop_runs(app: FastAPI) -> None:
    db = _sqlite(app)
    await _set(db, 1)
    await assert_waits_out_a_held_lock(db.engine.url.database or "", _set(db, 3))
    assert await _version(db) == 3


async def test_a_lock_never_released_fails_and_writes_nothing(
    app: FastAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = _sqlite(app)
    await _set(db, 1)
    monkeypatch.setattr(inline_sqlite, "LOCK_WAIT_SECONDS", 0.1)
    other = sqlite3.connect(db.engine.url.database or "", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(OperationalError, match="locked"):
            await _set(db, 4)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert await _version(db) == 1
    await _set(db, 5)  # the connection that failed to begin is usable again
    assert await _version(db) == 5
