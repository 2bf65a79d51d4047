"""Direct writes: each statement commits on its own; a lock held by another connection is
waited out without stalling the event loop; a killed PostgreSQL connection is replaced."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.cache.version import ContentVersion
from app.core.db import Database, Query
from tests.conftest import postgres_admin_url
from tests.core.sqlite_lock import assert_waits_out_a_held_lock

SET_VERSION = Query.portable("UPDATE content_version SET version = :version WHERE id = 1")


async def _version(db: Database) -> int:
    async with db.session(write=False) as session:
        row = await session.get(ContentVersion, 1)
        assert row is not None
        return row.version


async def _with_row(db: Database) -> None:
    async with db.session() as session:
        await session.merge(ContentVersion(id=1, version=0))


async def test_a_statement_commits_on_its_own(app: FastAPI) -> None:
    db: Database = app.state.db
    await _with_row(db)
    writes = db.writes()
    try:
        await writes.execute(SET_VERSION, {"version": 7})
    finally:
        await writes.close()
    assert await _version(db) == 7


async def test_a_lock_held_elsewhere_is_waited_out_while_the_loop_runs(app: FastAPI) -> None:
    db: Database = app.state.db
    if not db.is_sqlite:
        pytest.skip("SQLite's file lock; PostgreSQL locks rows and waits server-side")
    await _with_row(db)
    writes = db.writes()
    try:
        await assert_waits_out_a_held_lock(
            db.engine.url.database or "", writes.execute(SET_VERSION, {"version": 3})
        )
    finally:
        await writes.close()
    assert await _version(db) == 3


@pytest.mark.skipif(postgres_admin_url() is None, reason="needs PostgreSQL (runs in the PG pass)")
async def test_a_killed_connection_is_replaced(app: FastAPI, database_url: str) -> None:
    db: Database = app.state.db
    await _with_row(db)
    writes = db.writes()
    try:
        await writes.execute(SET_VERSION, {"version": 1})
        admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            await conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            )
        await admin.dispose()
        await writes.execute(SET_VERSION, {"version": 2})
    finally:
        await writes.close()
    assert await _version(db) == 2
