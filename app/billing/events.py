"""The Stripe event ledger, and the way every event goes through it.

A verified event (`PaymentGateway.parse_webhook`) already done is answered from a direct
read. A new one is stored, claimed and applied (`handlers`) in one short transaction on the
inline SQLite opt-in, its mail put in the outbox in that same transaction; what it needs
from the provider is asked before that transaction begins, never inside it. A failure is
recorded on the event in a second transaction, and the caller answers 5xx so Stripe retries.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.admin import audit
from app.billing import handlers, repository
from app.billing.errors import WebhookFailed
from app.billing.gateway import GatewayError, PaymentGateway, WebhookEvent
from app.billing.models import EventStatus, StripeEvent
from app.core import mail_outbox
from app.core.config import Settings
from app.core.db import Database, utcnow
from app.core.errors import NotFound

log = logging.getLogger("broadsheet.billing.events")

CLAIM_TIMEOUT = timedelta(seconds=60)
# Another attempt is made only when the provider's state moved while one was applied.
ATTEMPTS = 5


async def receive(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    event: WebhookEvent,
    *,
    force: bool = False,
    actor: audit.Actor | None = None,
) -> str:
    """Apply an event once; give back its status ("duplicate" when it is done already).

    Raises WebhookFailed when it could not be applied, after storing the event with its
    error: the caller answers 5xx, Stripe retries and staff can replay it; nothing else of
    the failed attempt remains. `force` (a staff replay of a failed or unmatched event)
    applies it whatever its state. With an `actor` every write lands in the audit log as
    theirs; Stripe's own deliveries have none.
    """
    try:
        return await _receive(db, gateway, settings, event, force=force, actor=actor)
    except Exception as exc:
        raise WebhookFailed("The event could not be applied; it will be retried.") from exc


async def _receive(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    event: WebhookEvent,
    *,
    force: bool,
    actor: audit.Actor | None,
) -> str:
    # Stripe redelivers often; a direct read answers a finished event without a session or
    # the write lock.
    if not force and await repository.event_processed(db.reads, event.id):
        return "duplicate"
    try:
        # The provider is asked before the transaction opens, so no write lock is held over
        # a network call (on SQLite that lock would serialise every webhook behind Stripe).
        answers: handlers.Answers = {}
        needed = handlers.subscription_of(event)
        await handlers.ask_provider(gateway, answers, [needed] if needed else [])
        return await apply_answered(db, gateway, settings, event, answers, force=force, actor=actor)
    except Exception as exc:
        log.warning("webhook %s failed: %s", event.id, exc)
        async with db.session() as session:
            audit.mark(session, actor)
            await repository.store_and_claim(session, event, stale=None)
            error = f"{type(exc).__name__}: {exc}"[:2000]
            await repository.mark_event_failed(session, event.id, error)
        raise


async def apply_answered(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    event: WebhookEvent,
    answers: handlers.Answers,
    *,
    force: bool,
    actor: audit.Actor | None,
) -> str:
    """Store, claim and apply an event in one transaction with what the provider answered;
    when applying finds an answer missing or overtaken, the transaction rolls back and the
    provider is asked again, outside it. Give back the event's status."""
    for _ in range(ATTEMPTS):
        try:
            async with db.session(inline=True) as session:
                audit.mark(session, actor)
                run = handlers.Applying(session, settings, gateway.name, answers)
                return await _claim_and_apply(session, run, event, force=force)
        except handlers.AskAgain as missing:
            await handlers.ask_provider(gateway, answers, [missing.subscription_id])
    raise GatewayError("the provider's state kept changing while the event was applied")


async def _claim_and_apply(
    session: AsyncSession, run: handlers.Applying, event: WebhookEvent, *, force: bool
) -> str:
    # Stored and claimed in the transaction that applies the event: a concurrent delivery of
    # the same event waits on its row (PostgreSQL) or on the database lock (SQLite), then
    # finds it done.
    stale = None if force else utcnow() - CLAIM_TIMEOUT
    if not await repository.store_and_claim(session, event, stale=stale):
        return "duplicate"
    outcome = await handlers.handle(run, event)
    for message in outcome.mail:
        mail_outbox.enqueue(session, run.settings, message)
    await repository.mark_event_done(session, event.id, outcome.status)
    return outcome.status.value


async def stored_events(
    session: AsyncSession,
    *,
    status: EventStatus | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[StripeEvent], str | None]:
    """Stored events, newest first, with their processing status and error."""
    return await repository.events_page(
        session, status=status, kind=kind, limit=limit, cursor=cursor
    )


async def replay(
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    row_id: int,
    *,
    actor: audit.Actor | None,
) -> StripeEvent:
    """Apply a stored event again (failed or unmatched ones; processed events are no-ops)
    and give back its row as it is then: one that failed again shows `failed` and why."""
    async with db.session(write=False) as read:
        row = await repository.stored_event(read, row_id)
    if row is None:
        raise NotFound("No such event.", code="event_not_found")
    force = row.status in {EventStatus.failed.value, EventStatus.unmatched.value}
    event = WebhookEvent.from_json(row.payload)
    # A failure is stored on the event's row by `receive` itself: the answer shows it.
    with contextlib.suppress(WebhookFailed):
        await receive(db, gateway, settings, event, force=force, actor=actor)
    async with db.session(write=False) as read:
        fresh = await repository.stored_event(read, row_id)
    if fresh is None:  # pragma: no cover - stored events are never deleted
        raise NotFound("No such event.", code="event_not_found")
    return fresh
