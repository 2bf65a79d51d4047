"""Stripe webhooks: verify, store, claim once, apply in one transaction, record failures.

Order tolerance: we never trust an event's copy of a subscription. Every subscription or
invoice event re-fetches the subscription from the provider, which is authoritative, and
copies that; so an old `updated` arriving after a `deleted` cannot resurrect anything.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

import orjson
import stripe
from sqlalchemy import bindparam, text, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.admin import audit
from app.billing import emails, sync
from app.billing.errors import BadSignature, InvalidEvent, SignatureMissing
from app.billing.gateway import GatewayError, PaymentGateway, SubscriptionState
from app.billing.models import (
    BillingCustomer,
    BillingNotice,
    CheckoutRecord,
    EventStatus,
    Payment,
    StripeEvent,
    Subscription,
)
from app.core import mail_outbox as outbox
from app.core.config import Settings
from app.core.db import Database, Query, Reads, insert_ignoring_duplicates, utcnow
from app.core.types import UTCDateTime

log = logging.getLogger("broadsheet.billing.webhooks")

TOLERANCE_SECONDS = 300
MAX_BODY_BYTES = 1_048_576
CLAIM_TIMEOUT = timedelta(seconds=60)


def verify(payload: bytes, header: str | None, secrets: list[str]) -> dict[str, Any]:
    """Give back the verified event (any configured secret may sign it).

    Raises SignatureMissing without a header, BadSignature when the signature does not hold
    (no secret signs it, or its time is too old or in the future) and InvalidEvent when a
    body is no event.
    """
    if not header:
        raise SignatureMissing("The Stripe-Signature header is missing.")
    try:
        text_payload = payload.decode()
    except UnicodeDecodeError as exc:
        raise InvalidEvent("The body is not UTF-8 JSON.") from exc
    if not any(_signed_by(text_payload, header, secret) for secret in secrets):
        raise BadSignature("No configured secret matches the signature.")
    # The SDK only refuses old timestamps, so a far-future one is refused here, read from the
    # header as the SDK read it. It has read one by now: None would mean we read the header
    # otherwise than it did, which is refused as well.
    timestamp = _timestamp(header)
    if timestamp is None or timestamp > time.time() + TOLERANCE_SECONDS:
        raise BadSignature("The signature timestamp is in the future.")
    # The SDK's construct_event would build StripeObjects only for us to turn them back into
    # a dict; the signature check is the part we need from it.
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("The body is not valid JSON.") from exc
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("id"), str)
        or not isinstance(data.get("type"), str)
    ):
        raise InvalidEvent("The event has no id or type.")
    return data


def _signed_by(payload: str, header: str, secret: str) -> bool:
    try:
        stripe.WebhookSignature.verify_header(payload, header, secret, tolerance=TOLERANCE_SECONDS)
    except stripe.SignatureVerificationError:
        return False
    return True


def _timestamp(header: str) -> int | None:
    """Give back the header's `t` as stripe's WebhookSignature reads it, or None where it
    reads none: items split on "," then "=" (at most twice), keys compared unstripped, the
    first `t` through int() (so "+1", " 1 " and "1_0" are numbers), and an item "t" with no
    value spoils the lot, as does a signature item with none."""
    items = [item.split("=", 2) for item in header.split(",")]
    try:
        values = [parts[1] for parts in items if parts[0] == "t"]
        [parts[1] for parts in items if parts[0] == stripe.WebhookSignature.EXPECTED_SCHEME]
        return int(values[0])
    except (IndexError, ValueError):
        return None


@dataclass
class Outcome:
    status: EventStatus
    mail: list[EmailMessage] = field(default_factory=list)


@dataclass(frozen=True)
class Fetched:
    """A subscription as the provider gave it, asked for at `asked_at`."""

    state: SubscriptionState | None
    asked_at: datetime


@dataclass(frozen=True)
class Context:
    session: AsyncSession
    gateway: PaymentGateway
    settings: Settings
    event: dict[str, Any]
    prefetched: dict[str, Fetched] = field(default_factory=dict)

    @property
    def obj(self) -> dict[str, Any]:
        data: dict[str, Any] = self.event.get("data", {}).get("object", {})
        return data

    @property
    def event_id(self) -> str:
        return str(self.event["id"])


def _customer_of(obj: dict[str, Any]) -> str | None:
    customer = obj.get("customer")
    if isinstance(customer, dict):
        customer = customer.get("id")
    if obj.get("object") == "customer":
        customer = obj.get("id")
    return str(customer) if customer else None


_PROCESSED = Query.portable(
    "SELECT 1 FROM stripe_event WHERE event_id = :event_id AND processed_at IS NOT NULL"
)


async def _already_processed(reads: Reads, event_id: str) -> bool:
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
_EVENTS = StripeEvent.__table__  # type: ignore[attr-defined]
_CLAIM = {
    True: text(_INSERT_OR_CLAIM + " RETURNING id").bindparams(bindparam("now", type_=_TS)),
    False: text(_INSERT_OR_CLAIM + _WHEN_FREE + " RETURNING id").bindparams(
        bindparam("now", type_=_TS), bindparam("stale", type_=_TS)
    ),
}


async def _store_and_claim(
    session: AsyncSession, event: dict[str, Any], *, force: bool = False
) -> bool:
    """Store the event once (a duplicate id is a no-op) and take it for processing; False
    when it is done already or another worker holds it.

    Both run in the transaction that applies the event: a concurrent delivery of the same
    event waits on its row (PostgreSQL) or on the database lock (SQLite), then finds it
    processed.
    """
    obj = event.get("data", {}).get("object", {})
    now = utcnow()
    # One statement: insert the event claimed, or claim the stored one if it is not done and
    # nobody holds it; the row comes back only when this delivery has it.
    params: dict[str, Any] = {
        "event_id": event["id"],
        "type": event["type"],
        "created": int(event.get("created") or 0),
        "payload": orjson.dumps(event).decode(),
        "customer_id": _customer_of(obj) if isinstance(obj, dict) else None,
        "status": EventStatus.received.value,
        "now": now,
    }
    if not force:
        params["stale"] = now - CLAIM_TIMEOUT
    claimed = await session.exec(_CLAIM[force], params=params)  # type: ignore[call-overload]
    return claimed.first() is not None


async def process(
    db: Database,
    reads: Reads,
    gateway: PaymentGateway,
    settings: Settings,
    event: dict[str, Any],
    *,
    force: bool = False,
    actor: audit.Actor | None = None,
) -> str:
    """Store, claim and apply an event in one transaction, its mail (receipts, notices) put
    in the outbox in that same transaction; give back the event's status.

    Raises on failure after storing the event with its error, so the caller can answer 5xx,
    Stripe retries and staff can replay it; nothing else of the failed attempt remains.
    With an `actor` (a staff replay) every write lands in the audit log as theirs; Stripe's
    own deliveries have none.
    """
    # Stripe redelivers often; a direct read answers a finished event without a session or
    # the write lock.
    if not force and await _already_processed(reads, event["id"]):
        return "duplicate"
    try:
        # The provider is asked before the transaction opens, so no write lock is held over
        # a network call (on SQLite that lock serialised every webhook behind Stripe's reply).
        prefetched = await _prefetch(gateway, event)
        async with db.session(inline=True) as session:
            audit.mark(session, actor)
            if not await _store_and_claim(session, event, force=force):
                return "duplicate"
            outcome = await apply(Context(session, gateway, settings, event, prefetched))
            for message in outcome.mail:
                outbox.enqueue(session, settings, message)
            # On the table, not the entity: the ORM's bulk UPDATE path was 7 % of a webhook.
            await session.exec(
                update(_EVENTS)
                .where(_EVENTS.c.event_id == event["id"])
                .values(status=outcome.status.value, processed_at=utcnow(), error=None)
            )
    except Exception as exc:
        log.warning("webhook %s failed: %s", event["id"], exc)
        async with db.session() as session:
            audit.mark(session, actor)
            await _store_and_claim(session, event, force=True)
            await session.exec(
                update(StripeEvent)
                .where(
                    col(StripeEvent.event_id) == event["id"],
                    # A concurrent delivery of the same event may have succeeded meanwhile.
                    col(StripeEvent.processed_at).is_(None),
                )
                .values(
                    status=EventStatus.failed.value,
                    claimed_at=None,
                    error=f"{type(exc).__name__}: {exc}"[:2000],
                )
            )
        raise
    return outcome.status.value


_FETCH_VIA_FIELD = {"checkout.session.completed", "invoice.paid", "invoice.payment_succeeded",
                    "invoice.payment_failed"}  # fmt: skip


def _subscription_of(event: dict[str, Any]) -> str | None:
    """The subscription whose state applying `event` will copy from the provider, if any."""
    obj = event.get("data", {}).get("object", {})
    if not isinstance(obj, dict):
        return None
    if HANDLERS.get(event["type"]) is on_subscription:
        return sync.object_id(obj.get("id"))
    if event["type"] in _FETCH_VIA_FIELD:
        return sync.object_id(obj.get("subscription"))
    return None


async def _prefetch(gateway: PaymentGateway, event: dict[str, Any]) -> dict[str, Fetched]:
    subscription_id = _subscription_of(event)
    if not subscription_id:
        return {}
    started = utcnow()
    return {subscription_id: Fetched(await gateway.fetch_subscription(subscription_id), started)}


Handler = Callable[[Context], Coroutine[Any, Any, Outcome]]


async def apply(ctx: Context) -> Outcome:
    """Apply one event inside the caller's transaction."""
    handler = HANDLERS.get(ctx.event["type"])
    if handler is None:
        return Outcome(EventStatus.ignored)
    return await handler(ctx)


async def _sync_subscription(ctx: Context, subscription_id: str | None) -> Outcome:
    if not subscription_id:
        return Outcome(EventStatus.ignored)
    ours = await sync.locked_subscription(ctx.session, subscription_id)
    state = await _current_state(ctx, subscription_id, ours)
    if state is None:
        raise GatewayError(f"subscription {subscription_id} not found at the provider")
    if ours is not None and ours.customer_id == state.customer_id:
        user_id: int | None = ours.user_id  # our copy already says whose it is
    else:
        user_id = await sync.user_for_customer(ctx.session, state.customer_id, state.metadata)
    if user_id is None:
        return Outcome(EventStatus.unmatched)
    await sync.copy_state(
        ctx.session,
        state,
        user_id=user_id,
        provider=ctx.gateway.name,
        event_id=ctx.event_id,
        current=ours if state.id == subscription_id else "look up",
    )
    return Outcome(EventStatus.processed)


async def _current_state(
    ctx: Context, subscription_id: str, ours: sync.Held | None
) -> SubscriptionState | None:
    """The provider's state to copy: the prefetched one, unless our (locked) copy was written
    after it was asked for, when another event may have copied a newer state: then a fresh
    one."""
    early = ctx.prefetched.get(subscription_id)
    if early is not None and (ours is None or ours.updated_at < early.asked_at):
        return early.state
    return await ctx.gateway.fetch_subscription(subscription_id)


async def on_subscription(ctx: Context) -> Outcome:
    return await _sync_subscription(ctx, str(ctx.obj.get("id") or ""))


async def on_checkout_completed(ctx: Context) -> Outcome:
    obj = ctx.obj
    customer = _customer_of(obj)
    reference = str(
        obj.get("client_reference_id") or (obj.get("metadata") or {}).get("user_id") or ""
    )
    reader = await ctx.session.get(User, int(reference)) if reference.isdigit() else None
    if customer and reader is not None:
        await sync.link_customer(ctx.session, user_id=int(reference), customer_id=customer)
    session_id = str(obj.get("id") or "")
    record = (
        await ctx.session.exec(
            select(CheckoutRecord).where(CheckoutRecord.session_id == session_id)
        )
    ).first()
    if record is not None and record.completed_at is None:
        record.completed_at = utcnow()
        ctx.session.add(record)
    outcome = await _sync_subscription(ctx, sync.object_id(obj.get("subscription")))
    if customer and outcome.status is EventStatus.processed:
        await _replay_unmatched(ctx, customer)
    return outcome


async def _replay_unmatched(ctx: Context, customer_id: str) -> None:
    """Apply events that arrived before we knew this customer (e.g. invoice.paid first)."""
    waiting = (
        await ctx.session.exec(
            select(StripeEvent).where(
                StripeEvent.customer_id == customer_id,
                StripeEvent.status == EventStatus.unmatched.value,
            )
        )
    ).all()
    for row in waiting:
        earlier = orjson.loads(row.payload)
        outcome = await apply(Context(ctx.session, ctx.gateway, ctx.settings, earlier))
        row.status = outcome.status.value
        row.processed_at = utcnow()
        ctx.session.add(row)


async def on_invoice_paid(ctx: Context) -> Outcome:
    invoice = ctx.obj
    outcome = await _sync_subscription(ctx, sync.object_id(invoice.get("subscription")))
    customer = _customer_of(invoice)
    user_id = await sync.user_for_customer(ctx.session, customer) if customer else None
    if user_id is None:
        return Outcome(EventStatus.unmatched)
    await sync.record_payment(ctx.session, invoice, user_id=user_id)
    return outcome


async def on_invoice_failed(ctx: Context) -> Outcome:
    invoice = ctx.obj
    outcome = await _sync_subscription(ctx, sync.object_id(invoice.get("subscription")))
    customer = _customer_of(invoice)
    user_id = await sync.user_for_customer(ctx.session, customer) if customer else None
    if user_id is None:
        return Outcome(EventStatus.unmatched)
    key = f"payment_failed:{invoice.get('id')}:{invoice.get('attempt_count', 0)}"
    inserted = await ctx.session.exec(
        insert_ignoring_duplicates(BillingNotice).values(key=key, user_id=user_id, sent_at=utcnow())
    )
    user = await ctx.session.get(User, user_id)
    if inserted.rowcount and user is not None and user.deleted_at is None:
        outcome.mail.append(emails.payment_failed(ctx.settings, user.email))
    return outcome


async def on_charge_refunded(ctx: Context) -> Outcome:
    charge = ctx.obj
    payment = await _payment_for_charge(ctx.session, charge)
    if payment is None:
        return Outcome(EventStatus.unmatched)
    # Policy: a refund is recorded; access follows the subscription, which Stripe cancels
    # (and tells us about) if the refund came with a cancellation.
    payment.refunded_amount = int(charge.get("amount_refunded") or 0)
    ctx.session.add(payment)
    return Outcome(EventStatus.processed)


async def on_dispute_created(ctx: Context) -> Outcome:
    dispute = ctx.obj
    charge = dispute.get("charge")
    charge_obj = charge if isinstance(charge, dict) else {"id": charge}
    payment = await _payment_for_charge(ctx.session, charge_obj)
    if payment is None:
        return Outcome(EventStatus.unmatched)
    # Policy: flagged for staff in the payment record; access is not revoked automatically.
    payment.disputed = True
    ctx.session.add(payment)
    return Outcome(EventStatus.processed)


async def _payment_for_charge(session: AsyncSession, charge: dict[str, Any]) -> Payment | None:
    invoice_id = sync.object_id(charge.get("invoice"))
    if invoice_id:
        found = (
            await session.exec(select(Payment).where(Payment.invoice_id == invoice_id))
        ).first()
        if found is not None:
            return found
    charge_id = charge.get("id")
    if not charge_id:
        return None
    return (await session.exec(select(Payment).where(Payment.charge_id == str(charge_id)))).first()


async def on_customer_deleted(ctx: Context) -> Outcome:
    customer = _customer_of(ctx.obj)
    if not customer:
        return Outcome(EventStatus.ignored)
    link = (
        await ctx.session.exec(
            select(BillingCustomer).where(BillingCustomer.customer_id == customer)
        )
    ).first()
    if link is None:
        return Outcome(EventStatus.unmatched)
    subs = (
        await ctx.session.exec(select(Subscription).where(Subscription.customer_id == customer))
    ).all()
    now = utcnow()
    for sub in subs:
        if sub.status != "canceled":
            # Stripe cancels a deleted customer's subscriptions; mirror that without a fetch.
            state = SubscriptionState(
                id=sub.provider_subscription_id,
                customer_id=customer,
                status="canceled",
                price_id=None,
                current_period_end=sub.current_period_end,
                cancel_at_period_end=False,
                trial_end=sub.trial_end,
                canceled_at=now,
                amount=sub.amount,
                currency=sub.currency,
                interval=sub.interval,
            )
            await sync.copy_state(
                ctx.session,
                state,
                user_id=sub.user_id,
                provider=sub.provider,
                event_id=ctx.event_id,
            )
    await ctx.session.delete(link)
    return Outcome(EventStatus.processed)


HANDLERS: dict[str, Handler] = {
    "checkout.session.completed": on_checkout_completed,
    "customer.subscription.created": on_subscription,
    "customer.subscription.updated": on_subscription,
    "customer.subscription.deleted": on_subscription,
    "customer.subscription.paused": on_subscription,
    "customer.subscription.resumed": on_subscription,
    "customer.subscription.trial_will_end": on_subscription,
    "invoice.paid": on_invoice_paid,
    "invoice.payment_succeeded": on_invoice_paid,
    "invoice.payment_failed": on_invoice_failed,
    "charge.refunded": on_charge_refunded,
    "charge.dispute.created": on_dispute_created,
    "customer.deleted": on_customer_deleted,
}
