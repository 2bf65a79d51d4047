"""Migrations run up, down and up again on this run's dialect, and match the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import is_sqlite
from app.core.migrate import downgrade, upgrade
from app.models import include_object, metadata
from tests.conftest import create_postgres_database, postgres_admin_url


async def fresh_url(tmp_path: Path) -> str:
    admin = postgres_admin_url()
    if admin:
        return await create_postgres_database(admin)
    return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"


async def _diff(url: str) -> list[Any]:
    engine = create_async_engine(url)

    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "render_as_batch": is_sqlite(url),
                "include_object": include_object,
            },
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        diff = await conn.run_sync(compare)
    await engine.dispose()
    return diff


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


async def test_upgrade_downgrade_upgrade_and_models_agree(tmp_path: Path) -> None:
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url)
    assert set(metadata.tables) <= await _tables(url)
    await anyio.to_thread.run_sync(downgrade, url, "base")
    assert {t for t in await _tables(url) if not t.startswith("article_search")} <= {
        "alembic_version"
    }
    await anyio.to_thread.run_sync(upgrade, url)
    assert await _diff(url) == []
