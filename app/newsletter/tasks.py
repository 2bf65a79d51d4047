"""Worker jobs of the newsletter domain."""

from __future__ import annotations

from app.core.config import Settings
from app.core.db import Database
from app.newsletter import delivery


async def deliver(db: Database, settings: Settings) -> int:
    """One round of newsletter delivery; give back the work done."""
    return await delivery.run_round(db, settings)
