"""Reader access levels: the one place that says what a reader may read.

Paid access comes from an entitling subscription or a complimentary grant; the rule is a
pure function (`level_from`) so it can be tested as a table, and `access_level` feeds it
from the database. Unknown subscription statuses grant nothing (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import STAFF_ROLES, User
from app.billing.models import CompGrant, Subscription
from app.core.db import utcnow

log = logging.getLogger("broadsheet.billing")

ENTITLING = frozenset({"active", "trialing"})
KNOWN_STATUSES = frozenset(
    {"active", "trialing", "past_due", "canceled", "unpaid", "incomplete",
     "incomplete_expired", "paused"}
)  # fmt: skip


class AccessLevel(IntEnum):
    anonymous = 0
    member = 1
    paid = 2

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class SubscriptionFacts:
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    past_due_since: datetime | None


@dataclass(frozen=True)
class GrantFacts:
    starts_at: datetime
    ends_at: datetime | None
    revoked_at: datetime | None


def subscription_entitles(sub: SubscriptionFacts, now: datetime, grace: timedelta) -> bool:
    """Tell whether one subscription gives paid access at `now`."""
    if sub.status in ENTITLING:
        # A canceled-at-period-end subscription runs until the period ends; a period that is
        # long over means we missed the cancellation, so it no longer counts.
        return sub.current_period_end is None or now < sub.current_period_end + grace
    if sub.status == "past_due":
        started = sub.past_due_since or sub.current_period_end
        return started is not None and now < started + grace
    if sub.status not in KNOWN_STATUSES:
        log.warning("unknown subscription status %r treated as not entitling", sub.status)
    return False


def grant_entitles(grant: GrantFacts, now: datetime) -> bool:
    return (
        grant.revoked_at is None
        and grant.starts_at <= now
        and (grant.ends_at is None or now < grant.ends_at)
    )


def level_from(
    subscriptions: Sequence[SubscriptionFacts],
    grants: Sequence[GrantFacts],
    *,
    now: datetime,
    grace: timedelta,
) -> AccessLevel:
    """Give back a signed-in reader's level from their subscriptions and grants."""
    if any(subscription_entitles(s, now, grace) for s in subscriptions):
        return AccessLevel.paid
    if any(grant_entitles(g, now) for g in grants):
        return AccessLevel.paid
    return AccessLevel.member


async def access_level(
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
