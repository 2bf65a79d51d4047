"""The Stripe event ledger: a direct read for duplicates, one statement to store and claim an
event, its outcome, and what staff list and replay."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import orjson
from sqlalchemy import bindparam, text, update
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.gateway import WebhookEvent, customer_of
from app.billing.models import EventStatus, StripeEvent
from app.core.db import Params, Query, Reads, utcnow
from app.core.pagination import newest_first
from app.core.types import UTCDateTime

# --- the Stripe event ledger ----------------------------------------------------------------

_EVENTS = SQLModel.metadata.tables["stripe_event"]

_PROCESSED = Query.portable(
    "SELECT 1 FROM stripe_event WHERE event_id = :event_id AND processed_at IS NOT NULL"
)


async def event_processed(reads: Reads, event_id: str) -> bool:
    """Tell whether an event is done, from a direct read (no session, no write lock)."""
    return await reads.one(_PROCESSED, {"event_id": event_id}) is not None


# Text, not the dialect's INSERT ... ON CONFLICT: SQLAlchemy never caches those (their
# inherit_cache is off) and compiling one cost 0.7 ms of every webhook.
_INSERT_OR_CLAIM = (
    "INSERT INTO stripe_event (event_id, type, created, payload, customer_id, status,"
    " received_at, claimed_at, attempts)"
    " VALUES (:event_id, :type, :created, :payload, :customer_id, :status, :now, :now, 1)"
    " ON CONFLICT (event_id) DO UPDATE SET claimed_at = :now,"
    " attempts = stripe_event.attempts + 1"
)
_WHEN_FREE = (
    " WHERE stripe_event.processed_at IS NULL"
    " AND (stripe_event.claimed_at IS NULL OR stripe_event.claimed_at < :stale)"
)
_TS = UTCDateTime()
_CLAIM = {
    True: text(_INSERT_OR_CLAIM + " RETURNING id").bindparams(bindparam("now", type_=_TS)),
    False: text(_INSERT_OR_CLAIM + _WHEN_FREE + " RETURNING id").bindparams(
        bindparam("now", type_=_TS), bindparam("stale", type_=_TS)
    ),
}


async def store_and_claim(
    session: AsyncSession, event: WebhookEvent, *, stale: datetime | None
) -> bool:
    """In one statement, store the event claimed, or claim the stored one if it is not done
    and nobody claimed it after `stale` (None: take it whatever its state); True when this
    session has it."""
    params: Params = {
        "event_id": event.id,
        "type": event.type,
        "created": event.created,
        "payload": orjson.dumps(event.body).decode(),
        "customer_id": customer_of(event.object),
        "status": EventStatus.received.value,
        "now": utcnow(),
    }
    if stale is not None:
        params["stale"] = stale
    claimed = await session.exec(_CLAIM[stale is None], params=params)  # type: ignore[call-overload]
    return claimed.first() is not None


async def mark_event_done(session: AsyncSession, event_id: str, status: EventStatus) -> None:
    await session.exec(
        update(_EVENTS)
        .where(_EVENTS.c.event_id == event_id)
        .values(status=status.value, processed_at=utcnow(), error=None)
    )


async def mark_event_failed(session: AsyncSession, event_id: str, error: str) -> None:
    """Record why applying an event failed and release its claim (unless a concurrent
    delivery of it succeeded meanwhile)."""
    await session.exec(
        update(StripeEvent)
        .where(col(StripeEvent.event_id) == event_id, col(StripeEvent.processed_at).is_(None))
        .values(status=EventStatus.failed.value, claimed_at=None, error=error)
    )


async def unmatched_events(session: AsyncSession, customer_id: str) -> Sequence[StripeEvent]:
    """The events about a customer that waited for us to know it."""
    rows = await session.exec(
        select(StripeEvent).where(
            StripeEvent.customer_id == customer_id,
            StripeEvent.status == EventStatus.unmatched.value,
        )
    )
    return rows.all()


async def mark_applied_later(session: AsyncSession, row: StripeEvent, status: EventStatus) -> None:
    """Record the outcome of a stored event applied after the fact (it waited, unmatched)."""
    row.status = status.value
    row.processed_at = utcnow()
    session.add(row)


async def events_of_customer(session: AsyncSession, customer_id: str) -> Sequence[StripeEvent]:
    rows = await session.exec(select(StripeEvent).where(StripeEvent.customer_id == customer_id))
    return rows.all()


async def stored_event(session: AsyncSession, row_id: int) -> StripeEvent | None:
    return await session.get(StripeEvent, row_id)


async def events_page(
    session: AsyncSession,
    *,
    status: EventStatus | None,
    kind: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[StripeEvent], str | None]:
    """Stored events, newest first, optionally of one status and type."""
    query = select(StripeEvent)
    if status is not None:
        query = query.where(StripeEvent.status == status.value)
    if kind:
        query = query.where(StripeEvent.type == kind)
    return await newest_first(session, query, col(StripeEvent.id), limit=limit, cursor=cursor)
