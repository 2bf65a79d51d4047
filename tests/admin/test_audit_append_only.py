"""The audit log is append-only in the database itself, and only the retention purge trims it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import anyio
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import delete, func, text, update
from sqlalchemy.exc import DBAPIError
from sqlmodel import col, select
from typer.testing import CliRunner

from app.accounts.models import Role, User
from app.admin.models import AuditEntry
from app.cli import app as cli
from app.core.config import Settings, get_settings
from app.core.db import utcnow
from app.core.db.errors import Violation, violation
from tests.factories import Factory, Member

ENTRIES = AuditEntry.__table__  # type: ignore[attr-defined]


async def _an_entry(client: AsyncClient, factory: Factory) -> tuple[int, Member]:
    """Make a staff write through the API; give back its entry's id and the actor."""
    admin = await factory.member(role=Role.admin)
    reader = await factory.member()
    changed = await client.patch(
        f"/api/v1/admin/members/{reader.id}", json={"role": "author"}, headers=admin.headers
    )
    assert changed.status_code == 200
    log = await client.get(f"/api/v1/admin/audit?actor={admin.id}", headers=admin.headers)
    return int(log.json()["items"][0]["id"]), admin


async def _count(app: FastAPI) -> int:
    async with app.state.db.session(write=False) as session:
        return int((await session.exec(select(func.count()).select_from(AuditEntry))).one())


async def test_the_database_refuses_to_update_or_delete_an_audit_entry(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    entry_id, _ = await _an_entry(client, factory)
    before = await _count(app)
    statements = [
        update(ENTRIES).where(ENTRIES.c.id == entry_id).values(action="forged"),
        update(ENTRIES).values(actor_id=None),
        delete(ENTRIES).where(ENTRIES.c.id == entry_id),
        delete(ENTRIES),
    ]
    for statement in statements:
        with pytest.raises(DBAPIError, match="append-only"):
            async with app.state.db.session() as session:
                await session.exec(statement)
    # The ORM's own unit of work hits the same wall.
    with pytest.raises(DBAPIError, match="append-only"):
        async with app.state.db.session() as session:
            entry = await session.get(AuditEntry, entry_id)
            assert entry is not None
            await session.delete(entry)
    assert await _count(app) == before
    async with app.state.db.session(write=False) as session:
        entry = await session.get(AuditEntry, entry_id)
    assert entry is not None and entry.action == "update"


async def test_truncate_is_refused_on_postgresql(app: FastAPI, dialect: str) -> None:
    if dialect != "postgresql":
        pytest.skip("SQLite has no TRUNCATE; its DELETE trigger covers a bare DELETE")
    with pytest.raises(DBAPIError, match="append-only"):
        async with app.state.db.session() as session:
            await session.exec(text("TRUNCATE audit_entry"))


async def test_an_actor_with_entries_cannot_be_deleted(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    """ON DELETE SET NULL would be an UPDATE of the log: the foreign key restricts instead
    (accounts are anonymised, never deleted, so no path needs it)."""
    entry_id, actor = await _an_entry(client, factory)
    actor_id = actor.id
    with pytest.raises(DBAPIError) as refused:
        async with app.state.db.session() as session:
            await session.exec(delete(User).where(col(User.id) == actor_id))
    # The foreign key says no before any trigger has to.
    assert violation(refused.value) is Violation.foreign_key
    async with app.state.db.session(write=False) as session:
        entry = await session.get(AuditEntry, entry_id)
    assert entry is not None and entry.actor_id == actor_id


async def test_deleting_a_staff_account_keeps_its_entries(
    client: AsyncClient, factory: Factory
) -> None:
    entry_id, actor = await _an_entry(client, factory)
    other_admin = await factory.member(role=Role.admin)
    gone = await client.request(
        "DELETE", "/api/v1/me", json={"password": actor.password}, headers=actor.headers
    )
    assert gone.status_code == 204, gone.text
    log = await client.get(f"/api/v1/admin/audit?actor={actor.id}", headers=other_admin.headers)
    assert entry_id in [e["id"] for e in log.json()["items"]]


def _cli_purge(settings: Settings, monkeypatch: pytest.MonkeyPatch, before: str) -> str:
    monkeypatch.setenv("BROADSHEET_DATABASE_URL", settings.resolved_database_url)
    monkeypatch.setenv("BROADSHEET_VAR_DIR", str(settings.var_dir))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["audit", "purge", "--before", before])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


async def test_the_retention_purge_deletes_old_entries_only_and_logs_itself(
    app: FastAPI,
    client: AsyncClient,
    factory: Factory,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recent_id, _ = await _an_entry(client, factory)
    old = datetime(2020, 1, 1, tzinfo=UTC)
    async with app.state.db.session() as session:
        for days in (0, 30):
            await session.exec(
                ENTRIES.insert().values(
                    action="update",
                    entity="user",
                    entity_id="1",
                    created_at=old + timedelta(days=days),
                )
            )
    output = await anyio.to_thread.run_sync(_cli_purge, settings, monkeypatch, "2020-01-15")
    assert "1 entries" in output
    async with app.state.db.session(write=False) as session:
        rows = (await session.exec(select(AuditEntry).order_by(col(AuditEntry.id)))).all()
    kept = [r.created_at for r in rows if r.created_at < utcnow() - timedelta(days=1)]
    assert kept == [old + timedelta(days=30)]
    assert recent_id in [r.id for r in rows]
    purge = rows[-1]
    assert (purge.action, purge.entity, purge.actor_id) == ("purge", "audit_entry", None)
    assert purge.after == {"before": "2020-01-15T00:00:00+00:00", "deleted": 1}
    # The guard is back once the purge has committed.
    with pytest.raises(DBAPIError, match="append-only"):
        async with app.state.db.session() as session:
            await session.exec(delete(ENTRIES))


def test_the_purge_refuses_a_cut_off_in_the_future() -> None:
    tomorrow = (utcnow() + timedelta(days=2)).strftime("%Y-%m-%d")
    result = CliRunner().invoke(cli, ["audit", "purge", "--before", tomorrow])
    assert result.exit_code == 1
    assert "in the past" in result.output
