"""Fixtures every test builds on: a migrated database per run (SQLite or PostgreSQL), a clean
database per test, the app, an HTTP client on it, a real SMTP server, and users of each role."""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Request, Response
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from app.accounts.links import MAIL_BUILDERS
from app.admin import audit_retention
from app.core import mail_outbox as outbox
from app.core.config import Environment, MailerKind, Settings
from app.core.db import is_sqlite
from app.core.migrate import upgrade
from app.core.worker import NamedJob, run_once
from app.main import create_app
from app.models import metadata
from tests.factories import ArticleFactory, Factory
from tests.smtp import SmtpSink

PG_ENV = "BROADSHEET_TEST_DATABASE_URL"
TEST_SECRET = "test-" + "k" * 20 + "-0123456789abcdefghij"


def postgres_admin_url() -> str | None:
    return os.environ.get(PG_ENV) or None


async def create_postgres_database(admin_url: str) -> str:
    """Create an empty database on the test cluster and give back its URL."""
    name = f"bs_{uuid.uuid4().hex[:12]}"
    engine = create_async_engine(admin_url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def dialect() -> str:
    return "postgresql" if postgres_admin_url() else "sqlite"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One database for the run, migrated with Alembic (so every run tests the migrations)."""
    import asyncio

    admin = postgres_admin_url()
    if admin:
        url = asyncio.run(create_postgres_database(admin))
    else:
        path = tmp_path_factory.mktemp("db") / "broadsheet.db"
        url = f"sqlite+aiosqlite:///{path}"
    upgrade(url)
    yield url


@pytest.fixture(scope="session")
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


def make_settings(
    database_url: str, var_dir: Path, smtp_port: int, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "env": Environment.test,
        "database_url": database_url,
        "var_dir": var_dir,
        "jwt_secret": TEST_SECRET,
        "public_url": "https://reader.example",
        "cors_origins": ["https://reader.example"],
        "mailer": MailerKind.smtp,
        "smtp_host": "127.0.0.1",
        "smtp_port": smtp_port,
        "mail_from": "Broadsheet <news@broadsheet.example>",
        "embedded_worker": False,
        "log_level": "WARNING",
        # The OWASP minimum for argon2id: real hashing, fast enough for hundreds of sign-ups.
        "password_time_cost": 2,
        "password_memory_kib": 19456,
        "password_parallelism": 1,
        "refresh_cookie_secure": True,
    }
    values.update(overrides)
    return Settings.model_validate(values).check()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    return make_settings(database_url, tmp_path / "var", smtp_sink.port)


async def _wipe(database_url: str) -> None:
    """Empty the tables a test wrote to.

    Not a rolled-back outer transaction: a request's direct reads, the SQLite writers and the
    direct writes each run on connections of their own, which one outer transaction cannot
    hold. Most tests touch a few tables, so only those are emptied: truncating all of them
    cost ~120 ms a test on PostgreSQL, a third of the suite's time."""
    tables = [table.name for table in reversed(metadata.sorted_tables)]
    if is_sqlite(database_url):
        tables[:0] = ["article_search", "article_search_title"]  # FTS5 tables, not models
    engine = create_async_engine(database_url)
    # The audit log refuses DELETE and TRUNCATE; the wipe goes through the retention path's
    # guard, which lifts that for this one transaction.
    async with engine.begin() as conn, audit_retention.guard_lifted(conn):
        written = [name for name in tables if name in await _tables_with_rows(conn, tables)]
        if is_sqlite(database_url):
            for name in written:
                await conn.execute(text(f'DELETE FROM "{name}"'))  # noqa: S608 - our table names
        elif written:
            quoted = ", ".join(f'"{name}"' for name in written)
            await conn.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
    await engine.dispose()


async def _tables_with_rows(conn: AsyncConnection, tables: list[str]) -> set[str]:
    probes = " UNION ALL ".join(
        f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM \"{name}\")"  # noqa: S608 - our names
        for name in tables
    )
    return set((await conn.execute(text(probes))).scalars())


@pytest.fixture
async def app(settings: Settings, smtp_sink: SmtpSink) -> AsyncIterator[FastAPI]:
    smtp_sink.handler.reset()
    application = create_app(settings)
    yield application
    await application.state.gateway.close()
    await application.state.db.dispose()
    await _wipe(settings.resolved_database_url)


async def drain_outbox(app: FastAPI) -> None:
    """Do what the worker does with transactional mail until nothing is left to send (a
    failing round is logged and ends the drain, as the worker would retry it later)."""
    jobs = [NamedJob("mail.outbox", outbox.delivery_job(MAIL_BUILDERS))]
    for _ in range(10):
        if not await run_once(app.state.db, app.state.settings, jobs):
            return
    raise AssertionError("the outbox did not settle")


class _WorkingTransport(ASGITransport):
    """The app with its worker's mail round after each request (tests run no worker loop),
    so that mail a request caused has arrived when its answer has."""

    def __init__(self, app: FastAPI, **options: Any) -> None:
        super().__init__(app=app, **options)
        self.fastapi = app

    async def handle_async_request(self, request: Request) -> Response:
        response = await super().handle_async_request(request)
        await drain_outbox(self.fastapi)
        return response


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[AsyncClient]:
    transport = _WorkingTransport(app, client=("203.0.113.7", 40000))
    async with AsyncClient(transport=transport, base_url="https://api.test") as http:
        yield http


@pytest.fixture
def factory(app: FastAPI) -> Factory:
    return Factory(app)


@pytest.fixture
def articles(app: FastAPI) -> ArticleFactory:
    return ArticleFactory(app)


_TOKEN = re.compile(r"token=([A-Za-z0-9_\-]+)")


def token_from_mail(sink: SmtpSink, address: str) -> str:
    """Give back the token of the last link mailed to `address`."""
    messages = sink.handler.to(address)
    assert messages, f"no mail reached {address}"
    body = messages[-1].get_body(preferencelist=("plain",))
    assert body is not None
    match = _TOKEN.search(body.get_content())
    assert match, "no token link in the mail"
    return match.group(1)
