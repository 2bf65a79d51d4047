"""What each Stripe event does, applied in the write session it is given.

Order tolerance: we never trust an event's copy of a subscription. Every subscription or
invoice event copies the subscription as the provider states it, which is authoritative,
so an old `updated` arriving after a `deleted` cannot resurrect anything.

The provider is asked before the transaction opens (`ask_provider`), never inside it: no
write lock is held over a network call. Applying raises `AskAgain` when what it was told is
missing or may be older than our copy; the caller rolls back, asks, and applies again.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing import provider_state, repository
from app.billing.gateway import (
    GatewayError,
    PaymentGateway,
    SubscriptionState,
    WebhookEvent,
    customer_of,
    object_id,
)
from app.billing.models import EventStatus
from app.billing.repository import HeldSubscription
from app.core.config import Settings
from app.core.db import utcnow


@dataclass(frozen=True, slots=True)
class Answer:
    """A subscription as the provider stated it (None: no such subscription), and when it
    was asked."""

    state: SubscriptionState | None
    asked_at: datetime


Answers = dict[str, Answer]


class AskAgain(Exception):
    """Applying needs the provider's word on a subscription it has no fresh answer for."""

    def __init__(self, subscription_id: str) -> None:
        super().__init__(subscription_id)
        self.subscription_id = subscription_id


@dataclass
class Outcome:
    status: EventStatus
    mail: list[EmailMessage] = field(default_factory=list)


@dataclass
class Applying:
    """One attempt at applying an event: its write session and the provider's answers."""

    session: AsyncSession
    settings: Settings
    provider: str
    answers: Answers
    # Subscriptions this attempt copied: our copy is then the answer itself, however new.
    copied: set[str] = field(default_factory=set)

    def state_of(self, subscription_id: str, ours: HeldSubscription | None) -> SubscriptionState:
        """The provider's state to copy; AskAgain when there is no answer, or when our copy
        (locked) changed after the question and says otherwise: another event may have
        copied a newer state meanwhile."""
        answer = self.answers.get(subscription_id)
        if answer is None:
            raise AskAgain(subscription_id)
        fresh = (
            ours is None
            or ours.updated_at < answer.asked_at
            or subscription_id in self.copied
            or (answer.state is not None and provider_state.copy_holds(ours, answer.state))
        )
        if not fresh:
            raise AskAgain(subscription_id)
        if answer.state is None:
            raise GatewayError(f"subscription {subscription_id} not found at the provider")
        return answer.state


async def ask_provider(gateway: PaymentGateway, answers: Answers, ids: Iterable[str]) -> None:
    """Ask the provider for each subscription in `ids`, noting when each was asked."""
    for subscription_id in ids:
        asked_at = utcnow()
        answers[subscription_id] = Answer(
            await gateway.fetch_subscription(subscription_id), asked_at
        )


_VIA_FIELD = {"checkout.session.completed", "invoice.paid", "invoice.payment_succeeded",
              "invoice.payment_failed"}  # fmt: skip


def subscription_of(event: WebhookEvent) -> str | None:
    """The subscription whose state applying `event` copies from the provider, if any."""
    if HANDLERS.get(event.type) is on_subscription:
        return object_id(event.object.get("id"))
    if event.type in _VIA_FIELD:
        return object_id(event.object.get("subscription"))
    return None


async def handle(run: Applying, event: WebhookEvent) -> Outcome:
    """Apply one event inside the attempt's transaction; an unknown type is ignored."""
    handler = HANDLERS.get(event.type)
    if handler is None:
        return Outcome(EventStatus.ignored)
    return await handler(run, event)


async def _copy_from_provider(
    run: Applying, event: WebhookEvent, subscription_id: str | None
) -> Outcome:
    """Copy the provider's state of a subscription into ours, for whichever reader owns it."""
    if not subscription_id:
        return Outcome(EventStatus.ignored)
    ours = await repository.locked_subscription(run.session, subscription_id)
    state = run.state_of(subscription_id, ours)
    if ours is not None and ours.customer_id == state.customer_id:
        user_id: int | None = ours.user_id  # our copy already says whose it is
    else:
        user_id = await provider_state.owner_of_customer(
            run.session, state.customer_id, state.metadata
        )
    if user_id is None:
        return Outcome(EventStatus.unmatched)
    if state.id == subscription_id:
        await provider_state.copy_subscription(
            run.session, state, ours, user_id=user_id, provider=run.provider, event_id=event.id
        )
    else:  # the provider answered with another subscription: ours of that one, locked
        await provider_state.lock_and_copy(
            run.session, state, user_id=user_id, provider=run.provider, event_id=event.id
        )
    run.copied.add(subscription_id)
    return Outcome(EventStatus.processed)


async def on_subscription(run: Applying, event: WebhookEvent) -> Outcome:
    return await _copy_from_provider(run, event, object_id(event.object.get("id")))


async def on_checkout_completed(run: Applying, event: WebhookEvent) -> Outcome:
    obj = event.object
    customer = customer_of(obj)
    reference = str(
        obj.get("client_reference_id") or (obj.get("metadata") or {}).get("user_id") or ""
    )
    await provider_state.link_checkout_customer(run.session, reference, customer)
    await provider_state.mark_checkout_completed(run.session, str(obj.get("id") or ""))
    outcome = await _copy_from_provider(run, event, object_id(obj.get("subscription")))
    if customer and outcome.status is EventStatus.processed:
        await _apply_waiting_events(run, customer)
    return outcome


async def _apply_waiting_events(run: Applying, customer_id: str) -> None:
    """Apply the events that arrived before we knew this customer (e.g. invoice.paid first)."""
    for row in await repository.unmatched_events(run.session, customer_id):
        outcome = await handle(run, WebhookEvent.from_json(row.payload))
        await repository.mark_applied_later(run.session, row, outcome.status)


async def _invoice_and_owner(run: Applying, event: WebhookEvent) -> tuple[Outcome, int | None]:
    """Copy the invoice's subscription from the provider; give back that outcome and the
    invoice's owner among our members (None: not ours)."""
    invoice = event.object
    outcome = await _copy_from_provider(run, event, object_id(invoice.get("subscription")))
    customer = customer_of(invoice)
    owner = await provider_state.owner_of_customer(run.session, customer) if customer else None
    return outcome, owner


async def on_invoice_paid(run: Applying, event: WebhookEvent) -> Outcome:
    outcome, owner = await _invoice_and_owner(run, event)
    if owner is None:
        return Outcome(EventStatus.unmatched)
    await provider_state.record_payment(run.session, event.object, user_id=owner)
    return outcome


async def on_invoice_failed(run: Applying, event: WebhookEvent) -> Outcome:
    outcome, owner = await _invoice_and_owner(run, event)
    if owner is None:
        return Outcome(EventStatus.unmatched)
    notice = await provider_state.payment_failed_notice(
        run.session, run.settings, event.object, owner
    )
    if notice is not None:
        outcome.mail.append(notice)
    return outcome


async def on_charge_refunded(run: Applying, event: WebhookEvent) -> Outcome:
    recorded = await provider_state.record_refund(run.session, event.object)
    return Outcome(EventStatus.processed if recorded else EventStatus.unmatched)


async def on_dispute_created(run: Applying, event: WebhookEvent) -> Outcome:
    flagged = await provider_state.flag_dispute(run.session, event.object)
    return Outcome(EventStatus.processed if flagged else EventStatus.unmatched)


async def on_customer_deleted(run: Applying, event: WebhookEvent) -> Outcome:
    customer = customer_of(event.object)
    if not customer:
        return Outcome(EventStatus.ignored)
    known = await provider_state.forget_deleted_customer(run.session, customer, event_id=event.id)
    return Outcome(EventStatus.processed if known else EventStatus.unmatched)


Handler = Callable[[Applying, WebhookEvent], Coroutine[Any, Any, Outcome]]

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
