"""Copying the provider's truth into our tables: subscriptions, their history, payments."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.billing.gateway import SubscriptionState
from app.billing.models import BillingCustomer, Payment, Plan, Subscription, SubscriptionChange
from app.core.db import insert_ignoring_duplicates, pk, utcnow

# The table, not the entity: an INSERT on it skips the ORM's bulk machinery.
_CHANGES = SubscriptionChange.__table__  # type: ignore[attr-defined]


async def user_for_customer(
    session: AsyncSession, customer_id: str, metadata: dict[str, str] | None = None
) -> int | None:
    """Give back our user for a provider customer, linking it from metadata when we can."""
    # Columns rather than entities here and below: this runs on every webhook, and loading
    # whole rows into the session cost more than the statements themselves.
    linked = (
        await session.exec(
            select(BillingCustomer.user_id).where(BillingCustomer.customer_id == customer_id)
        )
    ).first()
    if linked is not None:
        return linked
    raw = (metadata or {}).get("user_id", "")
    if not raw.isdigit():
        return None
    live = (
        await session.exec(
            select(User.id).where(User.id == int(raw), col(User.deleted_at).is_(None))
        )
    ).first()
    if live is None:
        return None
    await link_customer(session, user_id=live, customer_id=customer_id)
    return live


async def link_customer(session: AsyncSession, *, user_id: int, customer_id: str) -> None:
    """Remember that `customer_id` is `user_id`'s (first link wins)."""
    await session.exec(
        insert_ignoring_duplicates(BillingCustomer).values(
            user_id=user_id, customer_id=customer_id, created_at=utcnow()
        )
    )


async def locked_subscription(session: AsyncSession, subscription_id: str) -> Subscription | None:
    """Give back our copy of a provider subscription, locked until the caller commits
    (FOR UPDATE on PostgreSQL; SQLite writers hold the database lock)."""
    return (
        await session.exec(
            select(Subscription)
            .where(Subscription.provider_subscription_id == subscription_id)
            .with_for_update()
        )
    ).first()


async def apply_state(
    session: AsyncSession,
    state: SubscriptionState,
    *,
    user_id: int,
    provider: str,
    event_id: str | None,
    at: datetime | None = None,
    current: Subscription | None | Literal["look up"] = "look up",
) -> Subscription:
    """Make our copy of a subscription equal to the provider's state; record status changes.

    `current` is our copy when the caller has read it already (None: we have none yet).
    """
    now = at or utcnow()
    sub = await locked_subscription(session, state.id) if current == "look up" else current
    plan_id = None
    if state.price_id:
        plan_id = (
            await session.exec(select(Plan.id).where(Plan.stripe_price_id == state.price_id))
        ).first()
    previous = sub.status if sub is not None else None
    if sub is None:
        sub = Subscription(
            user_id=user_id,
            provider=provider,
            provider_subscription_id=state.id,
            customer_id=state.customer_id,
            status=state.status,
        )
    sub.status = state.status
    sub.customer_id = state.customer_id or sub.customer_id
    sub.plan_id = plan_id if plan_id is not None else sub.plan_id
    sub.cancel_at_period_end = state.cancel_at_period_end
    sub.current_period_end = state.current_period_end
    sub.trial_end = state.trial_end
    sub.canceled_at = state.canceled_at
    sub.amount = state.amount
    sub.currency = state.currency
    sub.interval = state.interval
    if state.status == "past_due":
        sub.past_due_since = sub.past_due_since or now
    else:
        sub.past_due_since = None
    sub.updated_at = now
    session.add(sub)
    await session.flush()
    if previous != state.status:
        await session.exec(
            insert(_CHANGES).values(
                subscription_id=pk(sub.id),
                user_id=user_id,
                from_status=previous,
                to_status=state.status,
                amount=state.amount,
                currency=state.currency,
                interval=state.interval,
                occurred_at=now,
                event_id=event_id,
            )
        )
    return sub


async def record_payment(
    session: AsyncSession, invoice: dict[str, Any], *, user_id: int | None
) -> bool:
    """Record a paid invoice once; give back True when this call recorded it."""
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at") or invoice.get("created")
    charge = invoice.get("charge")
    result = await session.exec(
        insert_ignoring_duplicates(Payment).values(
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
    )
    return bool(result.rowcount)


def object_id(value: Any) -> str | None:
    """Give back the id of an expanded object or an id string (Stripe sends either)."""
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None
