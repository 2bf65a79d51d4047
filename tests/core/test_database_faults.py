"""A lost, starting or read-only database answers 503 problem+json, and the app recovers by
itself afterwards; database errors carry no bound values."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from app.accounts.models import User
from app.core.db import Database, Query, ReadsUnavailable
from app.core.db.direct_reads import PostgresConnections, PostgresReads
from app.core.db.errors import is_database_unavailable
from app.main import create_app
from tests.conftest import make_settings, postgres_admin_url
from tests.factories import Factory
from tests.pg_standin import RefusingPostgres
from tests.smtp import SmtpSink

PASSWORD = "correct horse battery staple"
NEEDS_POSTGRES = pytest.mark.skipif(
    postgres_admin_url() is None, reason="needs PostgreSQL (runs in the PG pass)"
)
TOUCH_VERSION = Query.portable("UPDATE alembic_version SET version_num = version_num")


def assert_database_unavailable(response: Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) > 0


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
    for response in responses:
        assert_database_unavailable(response)
    assert ready.status_code == 503


async def test_postgres_that_takes_no_sessions_yet_is_503_everywhere(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    # Around a restart the server is up but answers every start-up with 57P03 ("the database
    # system is starting up"): sign-up and login answered 500 there while the outage was 503.
    async with RefusingPostgres().running() as server:
        app = create_app(make_settings(server.url(), tmp_path, smtp_sink.port))
        transport = ASGITransport(app=app, raise_app_exceptions=False)
        credentials = {"email": "reader@example.com", "password": PASSWORD}
        async with AsyncClient(transport=transport, base_url="https://api.test") as http:
            responses = [
                await http.post("/api/v1/auth/login", json=credentials),
                await http.post("/api/v1/auth/signup", json={**credentials, "accept_terms": True}),
                await http.get("/api/v1/articles"),
                await http.get("/api/v1/articles/x"),
            ]
            ready = await http.get("/readyz")
        await app.state.gateway.close()
        await app.state.db.dispose()
    for response in responses:
        assert_database_unavailable(response)
    assert ready.status_code == 503
    assert ready.json()["code"] == "not_ready"
    assert server.startups >= len(responses) + 1


async def test_direct_reads_map_a_postgres_starting_up_to_unavailable() -> None:
    async with RefusingPostgres().running() as server:
        pool = PostgresConnections(server.url().replace("+asyncpg", ""), 2, 5, 5)
        reads = PostgresReads(pool)
        with pytest.raises(ReadsUnavailable):
            await reads.one(Query.portable("SELECT 1"), {})
        await reads.close()
    # The read was tried again on a fresh connection before giving up.
    assert server.startups == 2


@NEEDS_POSTGRES
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


@contextlib.asynccontextmanager
async def read_only_postgres(database_url: str) -> AsyncIterator[None]:
    """New sessions on the test database are read-only while the block runs, as on a standby."""
    name = make_url(database_url).database
    admin = create_async_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(
                text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
            )
        yield
    finally:
        async with admin.connect() as conn:
            await conn.execute(text("SET default_transaction_read_only = off"))
            await conn.execute(text(f'ALTER DATABASE "{name}" RESET default_transaction_read_only'))
        await admin.dispose()


@NEEDS_POSTGRES
async def test_readyz_is_503_while_postgres_takes_no_writes(
    client: AsyncClient, database_url: str
) -> None:
    async with read_only_postgres(database_url):
        refused = await client.get("/readyz")
    # The session that saw the database read-only is not reused: the next check sees it again.
    ready = await client.get("/readyz")
    assert refused.status_code == 503
    assert refused.json()["code"] == "not_ready"
    assert "read-only" in refused.json()["detail"]
    assert ready.status_code == 200, ready.text


@NEEDS_POSTGRES
async def test_writes_to_a_read_only_postgres_are_503_until_it_takes_writes_again(
    app: FastAPI, client: AsyncClient, database_url: str
) -> None:
    writes = app.state.db.writes()
    body = {"email": "reader@example.com", "password": PASSWORD, "accept_terms": True}
    try:
        async with read_only_postgres(database_url):
            refused = await client.post("/api/v1/auth/signup", json=body)
            with pytest.raises(asyncpg.ReadOnlySQLTransactionError) as caught:
                await writes.execute(TOUCH_VERSION, {})
        # Unwrapped by SQLAlchemy, the driver's error still reads as "unavailable" (503).
        assert is_database_unavailable(caught.value)
        # Neither the pool nor the direct writes hand out the read-only sessions again.
        accepted = await client.post("/api/v1/auth/signup", json=body)
        await writes.execute(TOUCH_VERSION, {})
    finally:
        await writes.close()
    assert_database_unavailable(refused)
    assert accepted.status_code == 201, accepted.text


ARGON2_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaC1vZi1hLXBhc3N3b3JkLWluLWEtcmFjZQ"


@pytest.mark.parametrize("write", [True, False], ids=["write-engine", "read-engine"])
async def test_database_errors_carry_no_bound_values(app: FastAPI, write: bool) -> None:
    db: Database = app.state.db
    taken = await Factory(app).member(email="taken@example.com")
    # What a sign-up race ends in: the second insert of one email, with its password hash.
    with pytest.raises(IntegrityError) as caught:
        async with db.session(write=write) as session:
            session.add(User(email=taken.user.email, password_hash=ARGON2_HASH))
            await session.flush()
    message = str(caught.value)
    assert "INSERT INTO" in message
    assert ARGON2_HASH not in message
    # PostgreSQL's own DETAIL line names the duplicate key: the server's text, not a bound value.
    bound = [line for line in message.splitlines() if not line.startswith("DETAIL:")]
    assert not any(taken.user.email in line for line in bound)
