"""Alembic environment: async, reading the URL from Broadsheet's settings, batch mode on SQLite."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from sqlalchemy.engine import Connection

from alembic import context
from app.core.config import Settings
from app.core.db import create_engine, is_sqlite
from app.models import include_object, metadata

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    return Settings().resolved_database_url


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    sqlite = is_sqlite(url or _url())
    context.configure(
        connection=connection,
        url=url,
        target_metadata=metadata,
        include_object=include_object,
        render_as_batch=sqlite,
        compare_type=True,
        compare_server_default=False,
        literal_binds=connection is None,
    )


def run_offline() -> None:
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def _run_sync(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
        if _at_head():
            # What is rendered from the articles is written by today's code, once the
            # schema it writes is all there (revisions create its tables empty).
            from app.articles.derived import after_migrations

            after_migrations(connection, Settings())


def _at_head() -> bool:
    heads = set(context.script.get_heads())
    return set(context.get_context().get_current_heads()) == heads


async def run_online() -> None:
    settings = Settings(database_url=_url())
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run_sync)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_sync(connection)
    else:
        asyncio.run(run_online())
