"""Our copies of the provider's subscriptions and customers: the statements the webhook runs
on every event (built once, on the tables, not through the ORM's unit of work)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import BindParameter, Table, bindparam, func, insert, update
from sqlalchemy import select as core_select
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.repository import live_account_id
from app.billing.gateway import SubscriptionState
from app.billing.models import BillingCustomer, Plan, Subscription, SubscriptionChange
from app.core.db import Params, insert_ignoring_duplicates, utcnow


def _table(model: type[SQLModel]) -> Table:
    return SQLModel.metadata.tables[str(model.__tablename__)]


# Tables, not entities, for the webhook's statements: they skip the ORM's unit of work and
# bulk machinery (the ORM's bulk UPDATE path alone was 7 % of a webhook).
_SUBS = _table(Subscription)
_CHANGES = _table(SubscriptionChange)
_CUSTOMERS = _table(BillingCustomer)
_PLANS = _table(Plan)


# --- customers ------------------------------------------------------------------------------

# Statements built once: each runs on every webhook, and a statement object reused keeps its
# cache key, where one built per call is traversed again for it.
_OWNER = core_select(
    core_select(_CUSTOMERS.c.user_id)
    .where(_CUSTOMERS.c.customer_id == bindparam("customer_id"))
    .scalar_subquery()
    .label("linked"),
    live_account_id(bindparam("user_id")).label("live"),
)


async def customer_owner(
    session: AsyncSession, customer_id: str, user_id: int | None
) -> tuple[int | None, int | None]:
    """In one round trip: the user linked to a provider customer, and `user_id` if that
    account is live."""
    params = {"customer_id": customer_id, "user_id": user_id}
    # sqlmodel's exec is typed for its own select only (at most four columns).
    linked, live = (await session.exec(_OWNER, params=params)).one()  # type: ignore[call-overload]
    return linked, live


async def link_customer(session: AsyncSession, *, user_id: int, customer_id: str) -> None:
    """Remember that `customer_id` is `user_id`'s (first link wins)."""
    await session.exec(
        insert_ignoring_duplicates(BillingCustomer).values(
            user_id=user_id, customer_id=customer_id, created_at=utcnow()
        )
    )


async def customer_of_user(session: AsyncSession, user_id: int) -> BillingCustomer | None:
    return await session.get(BillingCustomer, user_id)


async def customer_link(session: AsyncSession, customer_id: str) -> BillingCustomer | None:
    found = await session.exec(
        select(BillingCustomer).where(BillingCustomer.customer_id == customer_id)
    )
    return found.first()


# --- subscriptions --------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldSubscription:
    """Our copy of a provider subscription, as the copy rule reads it (locked)."""

    id: int
    user_id: int
    customer_id: str
    status: str
    past_due_since: datetime | None
    updated_at: datetime
    price_id: str | None
    cancel_at_period_end: bool
    current_period_end: datetime | None
    trial_end: datetime | None
    canceled_at: datetime | None
    amount: int
    currency: str
    interval: str
    plan_id: int | None
    tier_id: int | None


_PRICE_OF_PLAN = (
    core_select(_PLANS.c.stripe_price_id).where(_PLANS.c.id == _SUBS.c.plan_id).scalar_subquery()
)
_TIER_OF_PLAN = (
    core_select(_PLANS.c.tier_id).where(_PLANS.c.id == _SUBS.c.plan_id).scalar_subquery()
)
_HELD = (
    core_select(
        _SUBS.c.id,
        _SUBS.c.user_id,
        _SUBS.c.customer_id,
        _SUBS.c.status,
        _SUBS.c.past_due_since,
        _SUBS.c.updated_at,
        _PRICE_OF_PLAN,
        _SUBS.c.cancel_at_period_end,
        _SUBS.c.current_period_end,
        _SUBS.c.trial_end,
        _SUBS.c.canceled_at,
        _SUBS.c.amount,
        _SUBS.c.currency,
        _SUBS.c.interval,
        _SUBS.c.plan_id,
        _TIER_OF_PLAN,
    )
    .where(_SUBS.c.provider_subscription_id == bindparam("provider_id"))
    .with_for_update(of=_SUBS)
)


async def locked_subscription(session: AsyncSession, provider_id: str) -> HeldSubscription | None:
    """Give back our copy of a provider subscription, locked until the caller commits
    (FOR UPDATE on PostgreSQL; SQLite writers hold the database lock)."""
    result = await session.exec(_HELD, params={"provider_id": provider_id})  # type: ignore[call-overload]
    row = result.first()
    return HeldSubscription(*row) if row is not None else None


_PLAN_OF_PRICE = (
    core_select(_PLANS.c.id)
    .where(_PLANS.c.stripe_price_id == bindparam("price_id"))
    .scalar_subquery()
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
    **{
        name: bindparam(name, type_=_CHANGES.c[name].type)
        for name in ("from_plan_id", "to_plan_id", "from_tier_id", "to_tier_id")
    },
)
_PLAN_AND_TIER_OF_PRICE = core_select(_PLANS.c.id, _PLANS.c.tier_id).where(
    _PLANS.c.stripe_price_id == bindparam("price_id")
)


@dataclass(frozen=True)
class PlanAndTier:
    """A plan's id and its tier's, as a history row names them (None: not known)."""

    plan_id: int | None
    tier_id: int | None


async def plan_and_tier_of_price(session: AsyncSession, price_id: str) -> PlanAndTier | None:
    """Give back the plan selling a provider price, and its tier; None for a price of no plan."""
    result = await session.exec(_PLAN_AND_TIER_OF_PRICE, params={"price_id": price_id})  # type: ignore[call-overload]
    row = result.first()
    return PlanAndTier(row[0], row[1]) if row is not None else None


def copied_values(
    state: SubscriptionState, *, past_due_since: datetime | None, now: datetime
) -> Params:
    """The values the subscription statements below copy from a provider's state."""
    return {
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


async def insert_subscription(
    session: AsyncSession, values: Params, *, user_id: int, provider: str, provider_id: str
) -> int:
    """Insert our copy of a provider subscription; give back its id."""
    params = values | {"user_id": user_id, "provider": provider, "provider_id": provider_id}
    return int((await session.exec(_INSERT_SUB, params=params)).scalar_one())


async def update_subscription(session: AsyncSession, sub_id: int, values: Params) -> None:
    await session.exec(_UPDATE_SUB, params=values | {"sub_id": sub_id})


async def record_status_change(
    session: AsyncSession,
    values: Params,
    *,
    sub_id: int,
    user_id: int,
    from_status: str | None,
    event_id: str | None,
    plans: tuple[PlanAndTier, PlanAndTier],
) -> None:
    """Append a history row: the status and plan (and tier) before and after a copy."""
    before, after = plans
    params = values | {
        "sub_id": sub_id,
        "user_id": user_id,
        "from_status": from_status,
        "event_id": event_id,
        "from_plan_id": before.plan_id,
        "from_tier_id": before.tier_id,
        "to_plan_id": after.plan_id,
        "to_tier_id": after.tier_id,
    }
    await session.exec(_RECORD_CHANGE, params=params)


async def reloaded_subscription(session: AsyncSession, sub_id: int) -> Subscription:
    """Give back our copy as an entity read again (one held by the session predates a Core
    write)."""
    found = await session.get(Subscription, sub_id, populate_existing=True)
    if found is None:  # pragma: no cover - the caller wrote the row in this transaction
        raise LookupError(sub_id)
    return found


async def subscriptions_of(session: AsyncSession, user_id: int) -> Sequence[Subscription]:
    """A reader's subscriptions, the most recently changed first."""
    rows = await session.exec(
        select(Subscription)
        .where(Subscription.user_id == user_id)
        .order_by(col(Subscription.updated_at).desc())
    )
    return rows.all()


async def every_subscription_of(session: AsyncSession, user_id: int) -> Sequence[Subscription]:
    """A reader's subscriptions, ended ones included, in storage order (the data export)."""
    return (await session.exec(select(Subscription).where(Subscription.user_id == user_id))).all()


async def subscriptions_of_customer(
    session: AsyncSession, customer_id: str
) -> Sequence[Subscription]:
    rows = await session.exec(select(Subscription).where(Subscription.customer_id == customer_id))
    return rows.all()


async def subscription_by_provider_id(
    session: AsyncSession, provider_id: str
) -> Subscription | None:
    found = await session.exec(
        select(Subscription).where(Subscription.provider_subscription_id == provider_id)
    )
    return found.first()
