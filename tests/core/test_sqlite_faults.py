"""SQLite's own failures: a full database answers 503 and keeps nothing of the failed write."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from contextlib import closing
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy.engine import make_url

from app.accounts.models import Role
from app.core.db import Database
from app.main import create_app
from tests.conftest import make_settings, postgres_admin_url
from tests.core.test_database_faults import assert_database_unavailable
from tests.factories import Factory
from tests.smtp import SmtpSink

pytestmark = pytest.mark.skipif(
    postgres_admin_url() is not None, reason="SQLite's own failure modes (runs in the SQLite pass)"
)


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
    await app.state.reads.close()
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
