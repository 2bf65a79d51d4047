"""The provider's word copied into our tables: whose a customer is, our copy of each
subscription and its status history, payments, refunds, disputes, a deleted customer.

The provider is the authority: these rules copy what it said, taking the caller's session
(a webhook's transaction, or a reader's own request after asking Stripe).
"""

from __future__ import annotations

from datetime import datetime
from email.message import EmailMessage
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.billing import notices, repository
from app.billing.gateway import SubscriptionState, object_id
from app.billing.models import Payment, Subscription
from app.billing.repository import HeldSubscription
from app.core.config import Settings
from app.core.db import utcnow


async def owner_of_customer(
    session: AsyncSession, customer_id: str, metadata: dict[str, str] | None = None
) -> int | None:
    """Give back our user for a provider customer, linking it from metadata when we can."""
    raw = (metadata or {}).get("user_id", "")
    linked, live = await repository.customer_owner(
        session, customer_id, int(raw) if raw.isdigit() else None
    )
    if linked is not None:
        return int(linked)
    if live is None:
        return None
    await repository.link_customer(session, user_id=live, customer_id=customer_id)
    return int(live)


async def link_checkout_customer(
    session: AsyncSession, reference: str, customer_id: str | None
) -> None:
    """Link a completed checkout's customer to the reader it names, if that reader exists."""
    reader = await accounts.get_user(session, int(reference)) if reference.isdigit() else None
    if customer_id and reader is not None:
        await repository.link_customer(session, user_id=int(reference), customer_id=customer_id)


async def mark_checkout_completed(session: AsyncSession, session_id: str) -> None:
    """Note on our record of a checkout that the reader paid it."""
    record = await repository.checkout_by_session(session, session_id)
    if record is not None and record.completed_at is None:
        record.completed_at = utcnow()
        await repository.save(session, record)


def copy_holds(ours: HeldSubscription, state: SubscriptionState) -> bool:
    """Tell whether our copy already says what `state` says (copying it changes nothing)."""
    return (
        ours.status == state.status
        and ours.cancel_at_period_end == state.cancel_at_period_end
        and ours.current_period_end == state.current_period_end
        and ours.trial_end == state.trial_end
        and ours.canceled_at == state.canceled_at
        and (ours.amount, ours.currency, ours.interval)
        == (state.amount, state.currency, state.interval)
        # An empty customer or no price keeps what our copy had.
        and state.customer_id in ("", ours.customer_id)
        and state.price_id in (None, ours.price_id)
    )


async def copy_subscription(
    session: AsyncSession,
    state: SubscriptionState,
    ours: HeldSubscription | None,
    *,
    user_id: int,
    provider: str,
    event_id: str | None,
) -> int:
    """Make our copy of a subscription equal to the provider's state, record a status
    change, and give back our copy's id.

    `ours` is our copy as the caller read and locked it; None: we have none yet. Core
    statements, not the unit of work: this is most of a webhook.
    """
    now = utcnow()
    past_due_since: datetime | None = None
    if state.status == "past_due":
        # The grace period counts from the first past_due copy, however many follow it.
        past_due_since = (ours.past_due_since if ours else None) or now
    values = repository.copied_values(state, past_due_since=past_due_since, now=now)
    if ours is None:
        sub_id = await repository.insert_subscription(
            session, values, user_id=user_id, provider=provider, provider_id=state.id
        )
    else:
        sub_id = ours.id
        await repository.update_subscription(session, sub_id, values)
    previous = ours.status if ours is not None else None
    before = repository.PlanAndTier(ours.plan_id, ours.tier_id) if ours else _NO_PLAN
    after = await _plan_after(session, state, before, ours)
    if previous != state.status or after != before:
        await repository.record_status_change(
            session,
            values,
            sub_id=sub_id,
            user_id=user_id,
            from_status=previous,
            event_id=event_id,
            plans=(before, after),
        )
    return sub_id


_NO_PLAN = repository.PlanAndTier(None, None)


async def _plan_after(
    session: AsyncSession,
    state: SubscriptionState,
    before: repository.PlanAndTier,
    ours: HeldSubscription | None,
) -> repository.PlanAndTier:
    """The plan our copy has after copying `state`: the one selling its price, or the one
    it had when the price is the same, missing or sold by no plan of ours (the copy keeps
    its plan then too). Looked up only when the price moved, so a copy that changes nothing
    costs no statement more."""
    if state.price_id is None or (ours is not None and state.price_id == ours.price_id):
        return before
    found = await repository.plan_and_tier_of_price(session, state.price_id)
    return found if found is not None else before


async def lock_and_copy(
    session: AsyncSession,
    state: SubscriptionState,
    *,
    user_id: int,
    provider: str,
    event_id: str | None,
) -> int:
    """`copy_subscription` after reading and locking our copy; give back its id."""
    ours = await repository.locked_subscription(session, state.id)
    return await copy_subscription(
        session, state, ours, user_id=user_id, provider=provider, event_id=event_id
    )


async def copy_and_load(
    session: AsyncSession,
    state: SubscriptionState,
    *,
    user_id: int,
    provider: str,
    event_id: str | None,
) -> Subscription:
    """`lock_and_copy`, giving back our copy as an entity read after the copy."""
    sub_id = await lock_and_copy(
        session, state, user_id=user_id, provider=provider, event_id=event_id
    )
    return await repository.reloaded_subscription(session, sub_id)


async def record_payment(
    session: AsyncSession, invoice: dict[str, Any], *, user_id: int | None
) -> bool:
    """Record a paid invoice once; give back True when this call recorded it."""
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or invoice.get("created")
    charge = invoice.get("charge")
    return await repository.insert_payment(
        session,
        invoice_id=str(invoice["id"]),
        charge_id=charge.get("id") if isinstance(charge, dict) else charge,
        user_id=user_id,
        subscription_id=object_id(invoice.get("subscription")),
        amount=int(invoice.get("amount_paid") or 0),
        currency=str(invoice.get("currency") or "usd"),
        paid_at=datetime.fromtimestamp(int(paid_at), utcnow().tzinfo) if paid_at else utcnow(),
        refunded_amount=0,
        disputed=False,
    )


async def payment_failed_notice(
    session: AsyncSession, settings: Settings, invoice: dict[str, Any], user_id: int
) -> EmailMessage | None:
    """Give back the notice of a failed invoice attempt, once per attempt (None when it went
    already, or the reader is gone)."""
    key = f"payment_failed:{invoice.get('id')}:{invoice.get('attempt_count', 0)}"
    first = await repository.note_notice(session, key, user_id)
    reader = await accounts.get_user(session, user_id)
    if first and reader is not None and reader.deleted_at is None:
        return notices.payment_failed(settings, reader.email)
    return None


async def record_refund(session: AsyncSession, charge: dict[str, Any]) -> bool:
    """Record a charge's refunded amount on its payment; False when we have no such payment.

    Policy: a refund is recorded; access follows the subscription, which Stripe cancels (and
    tells us about) if the refund came with a cancellation.
    """
    payment = await _payment_for_charge(session, charge)
    if payment is None:
        return False
    payment.refunded_amount = int(charge.get("amount_refunded") or 0)
    await repository.save(session, payment)
    return True


async def flag_dispute(session: AsyncSession, dispute: dict[str, Any]) -> bool:
    """Flag the disputed payment for staff; False when we have no such payment.

    Policy: access is not revoked automatically.
    """
    charge = dispute.get("charge")
    payment = await _payment_for_charge(
        session, charge if isinstance(charge, dict) else {"id": charge}
    )
    if payment is None:
        return False
    payment.disputed = True
    await repository.save(session, payment)
    return True


async def _payment_for_charge(session: AsyncSession, charge: dict[str, Any]) -> Payment | None:
    invoice_id = object_id(charge.get("invoice"))
    if invoice_id:
        found = await repository.payment_by_invoice(session, invoice_id)
        if found is not None:
            return found
    charge_id = charge.get("id")
    if not charge_id:
        return None
    return await repository.payment_by_charge(session, str(charge_id))


async def forget_deleted_customer(
    session: AsyncSession, customer_id: str, *, event_id: str
) -> bool:
    """End our copies of a customer's subscriptions and drop its link (it was deleted at the
    provider); False when we never knew the customer."""
    link = await repository.customer_link(session, customer_id)
    if link is None:
        return False
    now = utcnow()
    for sub in await repository.subscriptions_of_customer(session, customer_id):
        if sub.status != "canceled":
            # Stripe cancels a deleted customer's subscriptions; mirror that without a fetch.
            state = SubscriptionState(
                id=sub.provider_subscription_id,
                customer_id=customer_id,
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
            await lock_and_copy(
                session, state, user_id=sub.user_id, provider=sub.provider, event_id=event_id
            )
    await repository.delete(session, link)
    return True
