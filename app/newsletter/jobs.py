"""Worker jobs of the newsletter domain."""

from __future__ import annotations

from app.core.config import Settings
from app.core.db import Database
from app.core.mail import Mailer
from app.newsletter import outbox, sender


async def deliver(db: Database, settings: Settings, mailer: Mailer | None = None) -> int:
    """One round of newsletter delivery: start due issues, stop overdue ones, send one batch
    (through `mailer`, else the one the settings name), close finished ones; give back the
    work done."""
    work = await outbox.promote_due(db, settings)
    work += await outbox.expire_overdue(db)
    batch = await outbox.claim(db, settings, limit=settings.newsletter_batch_size)
    if batch:
        await sender.send_batch(db, settings, batch, mailer)
        work += len(batch)
    work += await outbox.finish_done(db)
    return work
