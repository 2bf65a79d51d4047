"""Running Alembic from code: used by `broadsheet migrate`, the tests and readiness."""

from __future__ import annotations

from alembic.config import Config

from alembic import command
from app.ops.service import ALEMBIC_INI


def alembic_config(database_url: str) -> Config:
    """Give back an Alembic config aimed at `database_url`."""
    config = Config(str(ALEMBIC_INI))
    config.attributes["database_url"] = database_url
    config.attributes["configure_logger"] = False
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
