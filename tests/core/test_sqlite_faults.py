"""SQLite's own failures: a full database answers 503 and keeps nothing of the failed write; a
connection that cannot write is replaced instead of failing every write after it."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from app.accounts.models import Role
from app.core.db import Database
from app.core.db.direct_writes import SQLiteWrites
from app.core.db.errors import is_database_unavailable
from app.main import create_app
from tests.conftest import make_settings, postgres_admin_url
from tests.core.test_database_faults import PASSWORD, TOUCH_VERSION, assert_database_unavailable
from tests.factories import Factory
from tests.smtp import SmtpSink

pytestmark = pytest.mark.skipif(
    postgres_admin_url() is not None, reason="SQLite's own failure modes (runs in the SQLite pass)"
)
# Per connection, as a connection opened on a read-only file is: every write is refused with
# SQLITE_READONLY ("attempt to write a readonly database").
REFUSE_WRITES = "PRAGMA query_only = ON"


def dump(path: str) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


@pytest.fixture
async def compact_app(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> AsyncIterator[FastAPI]:
    """An app on a compacted copy of the test database: with no free pages left inside the
    file, a page limit at its size refuses any write that needs more room."""
    path = tmp_path / "compact.db"
    with closing(sqlite3.connect(str(make_url(database_url).database))) as source:
        source.execute("VACUUM INTO ?", (str(path),))
    app = create_app(make_settings(f"sqlite+aiosqlite:///{path}", tmp_path, smtp_sink.port))
    yield app
    await app.state.gateway.close()
    await app.state.db.dispose()


async def test_a_full_database_is_503_and_the_failed_write_changes_nothing(
    compact_app: FastAPI,
) -> None:
    db: Database = compact_app.state.db
    editor = await Factory(compact_app).member(role=Role.editor)
    path = str(make_url(db.url).database)
    before = dump(path)
    async with db.write_engine.connect() as conn:
        pages = (await conn.exec_driver_sql("PRAGMA page_count")).scalar_one()
        # The limit is the connection's, and the pool hands this connection to the next write.
        await conn.exec_driver_sql(f"PRAGMA max_page_count = {pages}")
    transport = ASGITransport(app=compact_app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="https://api.test") as http:
        response = await http.post(
            "/api/v1/admin/articles",
            headers=editor.headers,
            json={"title": "A long read", "body_md": "A paragraph of words. " * 15_000},
        )
    assert_database_unavailable(response)
    assert dump(path) == before


async def test_a_write_connection_that_cannot_write_is_replaced(
    app: FastAPI, client: AsyncClient
) -> None:
    async with app.state.db.write_engine.connect() as conn:
        await conn.exec_driver_sql(REFUSE_WRITES)
    body = {"email": "reader@example.com", "password": PASSWORD, "accept_terms": True}
    refused = await client.post("/api/v1/auth/signup", json=body)
    accepted = await client.post("/api/v1/auth/signup", json=body)
    assert_database_unavailable(refused)
    assert accepted.status_code == 201, accepted.text


async def test_the_read_engine_drops_a_connection_that_cannot_write(app: FastAPI) -> None:
    engine = app.state.db.engine
    async with engine.connect() as conn:
        await conn.exec_driver_sql(REFUSE_WRITES)
    with pytest.raises(OperationalError) as caught:
        async with engine.begin() as conn:
            await conn.execute(text(TOUCH_VERSION.sqlite))
    assert caught.value.connection_invalidated
    async with engine.begin() as conn:
        await conn.execute(text(TOUCH_VERSION.sqlite))


async def test_direct_writes_replace_a_connection_that_cannot_write(app: FastAPI) -> None:
    db: Database = app.state.db
    writes = db.writes()
    assert isinstance(writes, SQLiteWrites)
    try:
        writes._connection().execute(REFUSE_WRITES)
        with pytest.raises(sqlite3.OperationalError, match="readonly") as caught:
            await writes.execute(TOUCH_VERSION, {})
        # Unwrapped by SQLAlchemy, the driver's error still reads as "unavailable" (503).
        assert is_database_unavailable(caught.value)
        await writes.execute(TOUCH_VERSION, {})
    finally:
        await writes.close()
