"""Readiness: is the database reachable and are its migrations at the code's head?"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from app.core.db import Database

log = logging.getLogger("broadsheet.ops")

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str = ""
    revision: str | None = None


@lru_cache
def code_heads() -> frozenset[str]:
    """Give back the migration heads shipped with this code."""
    config = Config(str(ALEMBIC_INI))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


async def readiness(db: Database) -> Readiness:
    """Give back whether the database answers and is at the code's migration head."""
    try:
        async with db.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
    except Exception as exc:  # noqa: BLE001 - any failure here means "not ready"
        log.warning("readiness check failed: %s", type(exc).__name__)
        return Readiness(False, "The database is unreachable or not migrated.")
    applied = frozenset(row[0] for row in rows)
    if applied != code_heads():
        return Readiness(False, "The database schema is not at the latest migration.")
    return Readiness(True, revision=",".join(sorted(applied)))
