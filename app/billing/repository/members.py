"""Billing's statements the staff console runs: member filters over a user id column, a
member's billing facts, the numbers of the stats report, and the import's and export's
customer and comp rows.

The filters are expressions over the caller's user id column (as `paid_condition` is), so a
member search stays one statement while billing's tables are named here only."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.models import (
    BillingCustomer,
    CheckoutRecord,
    CompGrant,
    Payment,
    Plan,
    StripeEvent,
    Subscription,
    SubscriptionChange,
)

# --- member filters ---------------------------------------------------------------------------


def subscription_condition(
    user_id: Any, plan_id: int | None, status: str | None
) -> ColumnElement[bool]:
    """SQL for "the member has a subscription to this plan, in this status" (either optional)."""
    sub = exists().where(col(Subscription.user_id) == user_id)
    if plan_id is not None:
        sub = sub.where(col(Subscription.plan_id) == plan_id)
    if status:
        sub = sub.where(col(Subscription.status) == status)
    return sub


# --- one member's billing ---------------------------------------------------------------------


async def member_subscriptions(session: AsyncSession, user_id: int) -> Sequence[Subscription]:
    """The member's subscriptions, in storage order."""
    return (await session.exec(select(Subscription).where(Subscription.user_id == user_id))).all()


async def subscription_history(session: AsyncSession, user_id: int) -> Sequence[SubscriptionChange]:
    """The member's subscription status changes, oldest first."""
    query = (
        select(SubscriptionChange)
        .where(SubscriptionChange.user_id == user_id)
        .order_by(col(SubscriptionChange.occurred_at))
    )
    return (await session.exec(query)).all()


async def member_events(session: AsyncSession, user_id: int) -> Sequence[StripeEvent]:
    """The latest 50 provider events of the member's billing customer, newest first."""
    customer = await session.get(BillingCustomer, user_id)
    if customer is None:
        return []
    query = (
        select(StripeEvent)
        .where(StripeEvent.customer_id == customer.customer_id)
        .order_by(col(StripeEvent.id).desc())
        .limit(50)
    )
    return (await session.exec(query)).all()


async def plan_names(session: AsyncSession) -> dict[int | None, str]:
    """Every plan's name by id."""
    return {p.id: p.name for p in (await session.exec(select(Plan))).all()}


# --- the stats report -------------------------------------------------------------------------


async def recurring_amounts(
    session: AsyncSession, statuses: Sequence[str]
) -> Sequence[tuple[str, int, str]]:
    """(currency, amount, interval) of every subscription in one of `statuses`."""
    rows = await session.exec(
        select(Subscription.currency, Subscription.amount, Subscription.interval).where(
            col(Subscription.status).in_(statuses)
        )
    )
    return rows.all()


async def status_changes_between(
    session: AsyncSession, start: datetime, end: datetime
) -> Sequence[SubscriptionChange]:
    """Subscription status changes in [start, end), oldest first."""
    query = (
        select(SubscriptionChange)
        .where(
            col(SubscriptionChange.occurred_at) >= start,
            col(SubscriptionChange.occurred_at) < end,
        )
        .order_by(col(SubscriptionChange.occurred_at))
    )
    return (await session.exec(query)).all()


async def trial_counts(session: AsyncSession) -> tuple[int, int]:
    """How many subscriptions ever started a trial, and how many went from trial to active."""
    started = await session.exec(
        select(func.count(func.distinct(SubscriptionChange.subscription_id))).where(
            SubscriptionChange.to_status == "trialing"
        )
    )
    converted = await session.exec(
        select(func.count(func.distinct(SubscriptionChange.subscription_id))).where(
            SubscriptionChange.from_status == "trialing", SubscriptionChange.to_status == "active"
        )
    )
    return int(started.one()), int(converted.one())


async def checkouts_by_article(session: AsyncSession) -> Sequence[tuple[str, int, int]]:
    """(article slug, checkouts started, checkouts completed), most completed first."""
    completed = func.count(col(CheckoutRecord.completed_at))
    rows = await session.exec(
        select(CheckoutRecord.article_slug, func.count(), completed)
        .where(col(CheckoutRecord.article_slug).is_not(None))
        .group_by(col(CheckoutRecord.article_slug))
        .order_by(completed.desc(), col(CheckoutRecord.article_slug))
    )
    return rows.all()  # type: ignore[return-value]  # the slug is never NULL here


async def payments_by_currency(
    session: AsyncSession,
) -> Sequence[tuple[str, int | None, int | None]]:
    """(currency, amount paid, amount refunded) per currency; NULL sums for none."""
    rows = await session.exec(
        select(
            Payment.currency, func.sum(Payment.amount), func.sum(Payment.refunded_amount)
        ).group_by(col(Payment.currency))
    )
    return rows.all()


# --- the member import and export -------------------------------------------------------------


async def customers_matching(
    session: AsyncSession, user_ids: Sequence[int], customer_ids: Sequence[str]
) -> Sequence[tuple[int, str]]:
    """(user id, customer id) of the customers of these members or with these ids."""
    rows = await session.exec(
        select(BillingCustomer.user_id, BillingCustomer.customer_id).where(
            or_(
                col(BillingCustomer.user_id).in_(user_ids),
                col(BillingCustomer.customer_id).in_(customer_ids),
            )
        )
    )
    return rows.all()


async def running_comp_ends(
    session: AsyncSession, user_ids: Sequence[int], now: datetime
) -> Sequence[tuple[int, int | None, datetime | None]]:
    """(user id, tier id, end) of these members' unrevoked comps running at `now`; no tier
    is every tier, no end is open."""
    rows = await session.exec(
        select(CompGrant.user_id, CompGrant.tier_id, CompGrant.ends_at).where(
            col(CompGrant.user_id).in_(user_ids),
            col(CompGrant.revoked_at).is_(None),
            or_(col(CompGrant.ends_at).is_(None), col(CompGrant.ends_at) > now),
        )
    )
    return rows.all()


async def insert_customers(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Link members to payment customers, one multi-row INSERT (nothing refers back to them)."""
    if rows:
        await session.exec(insert(BillingCustomer), params=rows)


async def add_grant(session: AsyncSession, grant: CompGrant) -> None:
    """Have the session write this comp at its next flush."""
    session.add(grant)


async def customer_ids_of(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, str]:
    """Each of these members' payment customer id, by user id."""
    rows = await session.exec(
        select(BillingCustomer.user_id, BillingCustomer.customer_id).where(
            col(BillingCustomer.user_id).in_(user_ids)
        )
    )
    return dict(rows.all())


async def comped_among(session: AsyncSession, user_ids: Sequence[int], now: datetime) -> set[int]:
    """Those of these members holding an unrevoked comp that runs at `now`."""
    rows = await session.exec(
        select(CompGrant.user_id, CompGrant.ends_at, CompGrant.revoked_at).where(
            col(CompGrant.user_id).in_(user_ids)
        )
    )
    return {uid for uid, ends, revoked in rows if revoked is None and (ends is None or ends > now)}
