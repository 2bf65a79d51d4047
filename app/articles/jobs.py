"""Worker jobs of the articles domain."""

from __future__ import annotations

from app.articles import service
from app.core.config import Settings
from app.core.db import Database


async def publish_scheduled(db: Database, settings: Settings) -> int:  # noqa: ARG001
    """Flip scheduled articles whose time has come to published; give back how many."""
    async with db.session() as session:
        return await service.publish_due(session)
