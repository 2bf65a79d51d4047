"""A reader's level from the database: billing's subscriptions and grants fed to the
access rule (`app.access.levels`), and the same rule as SQL for filters and counts."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.levels import (
    ENTITLING,
    AccessLevel,
    GrantFacts,
    SubscriptionFacts,
    level_from,
    subscription_entitles,
)
from app.accounts.models import STAFF_ROLES, User
from app.billing.models import CompGrant, Subscription
from app.core.db import utcnow


async def user_reader_level(
    session: AsyncSession, user: User | None, *, grace_days: int = 7
) -> AccessLevel:
    """Give back the reader's access level from the database; staff read everything."""
    if user is None:
        return AccessLevel.anonymous
    if user.role in STAFF_ROLES:
        return AccessLevel.paid
    now = utcnow()
    subs = (
        await session.exec(
            select(
                Subscription.status,
                Subscription.current_period_end,
                Subscription.cancel_at_period_end,
                Subscription.past_due_since,
            ).where(Subscription.user_id == user.id)
        )
    ).all()
    facts = [SubscriptionFacts(*row) for row in subs]
    grace = timedelta(days=grace_days)
    if any(subscription_entitles(f, now, grace) for f in facts):
        return AccessLevel.paid
    grants = (
        await session.exec(
            select(CompGrant.starts_at, CompGrant.ends_at, CompGrant.revoked_at).where(
                CompGrant.user_id == user.id,
                col(CompGrant.revoked_at).is_(None),
                or_(col(CompGrant.ends_at).is_(None), col(CompGrant.ends_at) > now),
            )
        )
    ).all()
    return level_from(facts, [GrantFacts(*g) for g in grants], now=now, grace=grace)


def paid_condition(user_id: Any, now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """The same rule as `level_from`, as SQL over a user id column (for filters and counts).

    tests/billing/test_entitlements.py checks that both agree on every row of the table.
    """
    entitling_sub = exists().where(
        col(Subscription.user_id) == user_id,
        or_(
            and_(
                col(Subscription.status).in_(list(ENTITLING)),
                or_(
                    col(Subscription.current_period_end).is_(None),
                    col(Subscription.current_period_end) > now - grace,
                ),
            ),
            and_(
                col(Subscription.status) == "past_due",
                func.coalesce(Subscription.past_due_since, Subscription.current_period_end)
                > now - grace,
            ),
        ),
    )
    return or_(entitling_sub, comp_condition(user_id, now))


def paid_access_condition(user_id: Any, now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """SQL for "`access_level` says paid" over a user id column: staff, or `paid_condition`."""
    staff = exists().where(col(User.id) == user_id, col(User.role).in_(sorted(STAFF_ROLES)))
    return or_(staff, paid_condition(user_id, now, grace))


def comp_condition(user_id: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: the user has a complimentary grant running at `now`."""
    return exists().where(
        col(CompGrant.user_id) == user_id,
        col(CompGrant.revoked_at).is_(None),
        col(CompGrant.starts_at) <= now,
        or_(col(CompGrant.ends_at).is_(None), col(CompGrant.ends_at) > now),
    )
