"""The entitled reader, defined once: the rule of `app.access.levels` as SQL over a user id
column (filters and counts), from the ORM (a user at hand), and as the direct read of the
reader pages (a token)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_
from sqlalchemy import select as sa_select
from sqlalchemy.orm import aliased
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.entitlements import (
    ANONYMOUS,
    ENTITLING,
    STAFF,
    AccessLevel,
    Entitlements,
    GrantFacts,
    SubscriptionFacts,
    entitlements_from,
)
from app.accounts.models import STAFF_ROLES, User
from app.accounts.repository import (
    ACCOUNT_FROM_SQL,
    ACCOUNT_ID_SQL,
    ACCOUNT_STATE_SQL,
    staff_condition,
    token_counts_for,
)
from app.billing.models import CompGrant, Plan, Subscription
from app.core.db import Gathered, Query, Reads, parse_required_ts, parse_ts, utcnow
from app.core.security import AccessClaims

# --- the entitled reader --------------------------------------------------------------------


def entitling_subscription(now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """SQL over `subscription`: the row gives paid access at `now` (`subscription_entitles`)."""
    return or_(
        and_(
            col(Subscription.status).in_(sorted(ENTITLING)),
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
    )


def held_plan(now: datetime) -> ColumnElement[bool]:
    """SQL over `subscription` joined with `plan`: the plan is the subscription's, or the one
    a downgrade at period end keeps until `kept_until`."""
    return or_(
        col(Subscription.plan_id) == col(Plan.id),
        and_(col(Subscription.kept_plan_id) == col(Plan.id), col(Subscription.kept_until) > now),
    )


def running_comp(now: datetime) -> list[ColumnElement[bool]]:
    """SQL over `comp_grant`: the grant runs at `now` (`grant_entitles`)."""
    return [
        col(CompGrant.revoked_at).is_(None),
        col(CompGrant.starts_at) <= now,
        or_(col(CompGrant.ends_at).is_(None), col(CompGrant.ends_at) > now),
    ]


def paid_condition(user_id: Any, now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """The rule of `entitlements_from` for "some paid tier", as SQL over a user id column
    (for filters and counts).

    tests/billing/test_entitlements.py checks that both agree on every row of the table.
    """
    entitling_sub = exists().where(
        col(Subscription.user_id) == user_id, entitling_subscription(now, grace)
    )
    return or_(entitling_sub, comp_condition(user_id, now))


def paid_access_condition(user_id: Any, now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """SQL for "`access_level` says paid" over a user id column: staff, or `paid_condition`."""
    return or_(staff_condition(user_id), paid_condition(user_id, now, grace))


def comp_condition(user_id: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: the user has a complimentary grant running at `now`."""
    return exists().where(col(CompGrant.user_id) == user_id, *running_comp(now))


async def user_entitlements(
    session: AsyncSession, user: User | None, *, grace_days: int
) -> Entitlements:
    """Give back the reader's entitlements from the database; staff read everything."""
    if user is None:
        return ANONYMOUS
    if user.role in STAFF_ROLES:
        return STAFF
    kept = aliased(Plan)
    subs = (
        await session.execute(
            sa_select(
                col(Subscription.status),
                col(Subscription.current_period_end),
                col(Subscription.cancel_at_period_end),
                col(Subscription.past_due_since),
                col(Plan.tier_id),
                col(kept.tier_id),
                col(Subscription.kept_until),
            )
            .outerjoin(Plan, col(Plan.id) == Subscription.plan_id)
            .outerjoin(kept, col(kept.id) == Subscription.kept_plan_id)
            .where(col(Subscription.user_id) == user.id)
        )
    ).all()
    grants = (
        await session.exec(
            select(
                CompGrant.starts_at, CompGrant.ends_at, CompGrant.revoked_at, CompGrant.tier_id
            ).where(CompGrant.user_id == user.id, col(CompGrant.revoked_at).is_(None))
        )
    ).all()
    return entitlements_from(
        [SubscriptionFacts(*row) for row in subs],
        [GrantFacts(*g) for g in grants],
        now=utcnow(),
        grace=timedelta(days=grace_days),
    )


async def user_reader_level(
    session: AsyncSession, user: User | None, *, grace_days: int = 7
) -> AccessLevel:
    """The coarse level of `user_entitlements`: anonymous, member or paid."""
    return (await user_entitlements(session, user, grace_days=grace_days)).level


# The reader in one round trip (a paying reader's page on PostgreSQL made three), gathered
# with the other readers asked for meanwhile (core/db/gathered.py): the account row, one per
# subscription (NULLs for a reader who never subscribed), then a row per comp grant in the
# same columns, told apart by the kind after the key. A grant's start, end and revocation ride
# in the timestamp columns of a subscription row, its tier in the plan's. The account's part
# is accounts' fragment.
_NO_ACCOUNT = ", ".join(["NULL"] * len(ACCOUNT_STATE_SQL.split(",")))
_READER_SQL = f"""SELECT {ACCOUNT_ID_SQL}, 's', {ACCOUNT_STATE_SQL},
       s.status, s.current_period_end, s.cancel_at_period_end, s.past_due_since, p.tier_id,
       k.tier_id, s.kept_until
FROM {ACCOUNT_FROM_SQL} LEFT JOIN subscription s ON s.user_id = {ACCOUNT_ID_SQL}
LEFT JOIN plan p ON p.id = s.plan_id LEFT JOIN plan k ON k.id = s.kept_plan_id
WHERE {ACCOUNT_ID_SQL} {{id}}
UNION ALL
SELECT g.user_id, 'g', {_NO_ACCOUNT},
       NULL, g.starts_at, NULL, g.ends_at, g.tier_id, NULL, g.revoked_at
FROM comp_grant g WHERE g.user_id {{id}} AND g.revoked_at IS NULL"""  # noqa: S608 - constant fragments; the ids are a parameter
_READER = Gathered(
    Query(sqlite=_READER_SQL.format(id="= :id"), postgres=_READER_SQL.format(id="= ANY(:id)")),
    key="id",
)


async def token_entitlements(
    reads: Reads, claims: AccessClaims, *, grace_days: int
) -> Entitlements | None:
    """Give back the entitlements of the token's reader, or None when the token no longer
    counts (direct reads, for the hot reader paths).

    The same checks as `accounts.deps` (the user exists, is neither disabled nor deleted,
    and the token was issued after their last revocation) and the same rule as
    `user_entitlements`.
    """
    rows = await reads.gathered(_READER, {"id": claims.user_id})
    account = [row[1:] for row in rows if row[0] == "s"]
    if not account:
        return None
    if not token_counts_for(account[0], claims.issued_at):
        return None
    if account[0][0] in STAFF_ROLES:
        return STAFF
    subs = [
        SubscriptionFacts(
            status, parse_ts(period_end), bool(at_end), parse_ts(past_due), tier, kept,
            parse_ts(kept_until),
        )
        for *_, status, period_end, at_end, past_due, tier, kept, kept_until in account
        if status is not None
    ]  # fmt: skip
    grants = [
        GrantFacts(parse_required_ts(starts), parse_ts(ends), parse_ts(revoked), tier)
        for kind, *_, starts, _, ends, tier, _, revoked in rows
        if kind == "g"
    ]
    return entitlements_from(subs, grants, now=utcnow(), grace=timedelta(days=grace_days))
