"""Copying the provider's truth into our tables: subscriptions, their history, payments."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import BindParameter, bindparam, func, insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.billing.gateway import SubscriptionState
from app.billing.models import BillingCustomer, Payment, Plan, Subscription, SubscriptionChange
from app.core.db import insert_ignoring_duplicates, utcnow

# Tables, not entities: statements on them skip the ORM's unit of work and bulk machinery.
_CHANGES = SubscriptionChange.__table__  # type: ignore[attr-defined]
_CUSTOMERS = BillingCustomer.__table__  # type: ignore[attr-defined]
_USERS = User.__table__  # type: ignore[attr-defined]
_SUBS = Subscription.__table__  # type: ignore[attr-defined]
_PLANS = Plan.__table__  # type: ignore[attr-defined]

# Statements built once: each runs on every webhook, and a statement object reused keeps its
# cache key, where one built per call is traversed again for it.
_OWNER = select(
    select(_CUSTOMERS.c.user_id)
    .where(_CUSTOMERS.c.customer_id == bindparam("customer_id"))
    .scalar_subquery()
    .label("linked"),
    select(_USERS.c.id)
    .where(_USERS.c.id == bindparam("user_id"), _USERS.c.deleted_at.is_(None))
    .scalar_subquery()
    .label("live"),
)


async def user_for_customer(
    session: AsyncSession, customer_id: str, metadata: dict[str, str] | None = None
) -> int | None:
    """Give back our user for a provider customer, linking it from metadata when we can."""
    raw = (metadata or {}).get("user_id", "")
    # One round trip for both questions: is the customer linked, is the metadata's user live.
    linked, live = (
        await session.exec(
            _OWNER,  # type: ignore[call-overload]  # a Core select: see locked_subscription
            params={"customer_id": customer_id, "user_id": int(raw) if raw.isdigit() else None},
        )
    ).one()
    if linked is not None:
        return int(linked)
    if live is None:
        return None
    await link_customer(session, user_id=live, customer_id=customer_id)
    return int(live)


async def link_customer(session: AsyncSession, *, user_id: int, customer_id: str) -> None:
    """Remember that `customer_id` is `user_id`'s (first link wins)."""
    await session.exec(
        insert_ignoring_duplicates(BillingCustomer).values(
            user_id=user_id, customer_id=customer_id, created_at=utcnow()
        )
    )


@dataclass(frozen=True)
class Held:
    """What the copy rule reads of our copy of a subscription."""

    id: int
    user_id: int
    customer_id: str
    status: str
    past_due_since: datetime | None
    updated_at: datetime


_HELD = (
    select(
        _SUBS.c.id,
        _SUBS.c.user_id,
        _SUBS.c.customer_id,
        _SUBS.c.status,
        _SUBS.c.past_due_since,
        _SUBS.c.updated_at,
    )
    .where(_SUBS.c.provider_subscription_id == bindparam("provider_id"))
    .with_for_update()
)


async def locked_subscription(session: AsyncSession, subscription_id: str) -> Held | None:
    """Give back our copy of a provider subscription, locked until the caller commits
    (FOR UPDATE on PostgreSQL; SQLite writers hold the database lock)."""
    # sqlmodel's exec is typed for its own select only (at most four columns).
    result = await session.exec(_HELD, params={"provider_id": subscription_id})  # type: ignore[call-overload]
    row = result.first()
    return Held(*row) if row is not None else None


_PLAN_OF_PRICE = (
    select(_PLANS.c.id).where(_PLANS.c.stripe_price_id == bindparam("price_id")).scalar_subquery()
)


def _bind(name: str, column: str | None = None) -> BindParameter[Any]:
    """A named parameter typed as the subscription column it fills (timestamps need it)."""
    return bindparam(name, type_=_SUBS.c[column or name].type)


_COPIED = {
    name: _bind(name)
    for name in (
        "status",
        "cancel_at_period_end",
        "current_period_end",
        "trial_end",
        "canceled_at",
        "amount",
        "currency",
        "interval",
        "past_due_since",
    )
} | {"updated_at": _bind("now", "updated_at")}
_INSERT_SUB = (
    insert(_SUBS)
    .values(
        user_id=_bind("user_id"),
        provider=_bind("provider"),
        provider_subscription_id=_bind("provider_id", "provider_subscription_id"),
        customer_id=_bind("customer_id"),
        plan_id=_PLAN_OF_PRICE,
        created_at=_bind("now", "created_at"),
        **_COPIED,
    )
    .returning(_SUBS.c.id)
)
# An empty customer or an unknown price keeps what our copy had.
_UPDATE_SUB = (
    update(_SUBS)
    .where(_SUBS.c.id == _bind("sub_id", "id"))
    .values(
        customer_id=func.coalesce(func.nullif(_bind("customer_id"), ""), _SUBS.c.customer_id),
        plan_id=func.coalesce(_PLAN_OF_PRICE, _SUBS.c.plan_id),
        **_COPIED,
    )
)
_RECORD_CHANGE = insert(_CHANGES).values(
    subscription_id=bindparam("sub_id", type_=_CHANGES.c.subscription_id.type),
    user_id=bindparam("user_id", type_=_CHANGES.c.user_id.type),
    from_status=bindparam("from_status", type_=_CHANGES.c.from_status.type),
    to_status=_bind("status"),
    amount=_bind("amount"),
    currency=_bind("currency"),
    interval=_bind("interval"),
    occurred_at=bindparam("now", type_=_CHANGES.c.occurred_at.type),
    event_id=bindparam("event_id", type_=_CHANGES.c.event_id.type),
)


async def copy_state(
    session: AsyncSession,
    state: SubscriptionState,
    *,
    user_id: int,
    provider: str,
    event_id: str | None,
    current: Held | None | Literal["look up"] = "look up",
) -> int:
    """Make our copy of a subscription equal to the provider's state, record a status
    change, and give back our copy's id.

    `current` is our copy when the caller has read (and locked) it already; None: we have
    none yet. Core statements, not the unit of work: this is most of a webhook.
    """
    now = utcnow()
    held = await locked_subscription(session, state.id) if current == "look up" else current
    past_due_since = None
    if state.status == "past_due":
        # The grace period counts from the first past_due copy, however many follow it.
        past_due_since = (held.past_due_since if held else None) or now
    params: dict[str, Any] = {
        "status": state.status,
        "cancel_at_period_end": state.cancel_at_period_end,
        "current_period_end": state.current_period_end,
        "trial_end": state.trial_end,
        "canceled_at": state.canceled_at,
        "amount": state.amount,
        "currency": state.currency,
        "interval": state.interval,
        "past_due_since": past_due_since,
        "now": now,
        "customer_id": state.customer_id,
        "price_id": state.price_id,
    }
    if held is None:
        params |= {"user_id": user_id, "provider": provider, "provider_id": state.id}
        sub_id = int((await session.exec(_INSERT_SUB, params=params)).scalar_one())
    else:
        sub_id = held.id
        await session.exec(_UPDATE_SUB, params=params | {"sub_id": sub_id})
    previous = held.status if held is not None else None
    if previous != state.status:
        await session.exec(
            _RECORD_CHANGE,
            params=params
            | {"sub_id": sub_id, "user_id": user_id, "from_status": previous, "event_id": event_id},
        )
    return sub_id


async def apply_state(
    session: AsyncSession,
    state: SubscriptionState,
    *,
    user_id: int,
    provider: str,
    event_id: str | None,
) -> Subscription:
    """copy_state, giving back our copy as an entity refreshed from the database."""
    sub_id = await copy_state(session, state, user_id=user_id, provider=provider, event_id=event_id)
    # populate_existing: an entity of this row already in the session predates the copy.
    found = await session.get(Subscription, sub_id, populate_existing=True)
    if found is None:  # pragma: no cover - the row was written in this transaction
        raise LookupError(sub_id)
    return found


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
