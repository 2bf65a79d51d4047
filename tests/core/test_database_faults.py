"""A lost database answers 503 problem+json; the pool recovers by itself afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from app.main import create_app
from tests.conftest import make_settings, postgres_admin_url
from tests.smtp import SmtpSink


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+asyncpg://postgres@127.0.0.1:1/nothing",
        "sqlite+aiosqlite:////nonexistent-dir/broadsheet.db",
    ],
)
async def test_unreachable_database_is_503_not_500(
    url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    app = create_app(make_settings(url, tmp_path, smtp_sink.port))
    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="https://api.test") as http:
        # The archive goes through the ORM, the article page through direct reads.
        responses = [await http.get(p) for p in ("/api/v1/articles", "/api/v1/articles/a")]
        ready = await http.get("/readyz")
    await app.state.db.dispose()
    await app.state.reads.close()
    for response in responses:
        assert response.status_code == 503, response.text
        assert response.json()["code"] == "database_unavailable"
        assert response.headers["retry-after"]
    assert ready.status_code == 503


@pytest.mark.skipif(postgres_admin_url() is None, reason="needs PostgreSQL (runs in the PG pass)")
async def test_killed_connections_are_replaced_without_errors(
    app: FastAPI, client: AsyncClient, database_url: str
) -> None:
    assert (await client.get("/api/v1/articles")).status_code == 200
    assert (await client.get("/api/v1/articles/none")).status_code == 404
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        killed = await conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        assert killed.scalar_one() >= 1
    await admin.dispose()
    # pool_pre_ping notices the dead connection at checkout and opens a new one; the direct
    # reads' pool retries once on a fresh connection.
    response = await client.get("/api/v1/articles")
    assert response.status_code == 200
    assert (await client.get("/api/v1/articles/none")).status_code == 404
