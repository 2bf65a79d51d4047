"""Which tiers a member has now, as SQL: the member filter by tier, the tiers a member answer
and the export list, and the per-tier figures of the stats report.

A member has tier T now when an entitling subscription's plan is in T (entitling by the rule
of `paid_condition`: ENTITLING statuses within their period plus the grace, or `past_due`
within the grace; the plan a downgrade keeps counts until `kept_until`, as in
`app.access.entitlements`), or a running comp names T or no tier (a comp without a tier is every
tier). Every read here is built on `tier_condition`, so the filter, the lists and the counts
cannot disagree. A subscription whose plan is gone (plan_id NULL) is in no tier.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, not_, or_, true, union
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.models import CompGrant, Plan, Subscription, Tier
from app.billing.repository.entitled import entitling_subscription, held_plan, running_comp
from app.core.db import pk


def paying_condition(
    user_id: Any, tier_id: Any, now: datetime, grace: timedelta
) -> ColumnElement[bool]:
    """SQL: an entitling subscription of the user is to a plan of the tier, or keeps one of
    its plans after a downgrade, until the period paid for ends."""
    # Correlated explicitly: auto-correlation reaches only the enclosing statement, and
    # free_condition nests this one two levels down.
    return (
        exists()
        .where(
            col(Subscription.user_id) == user_id,
            held_plan(now),
            col(Plan.tier_id) == tier_id,
            entitling_subscription(now, grace),
        )
        .correlate_except(Subscription, Plan)
    )


def tier_condition(
    user_id: Any, tier_id: Any, now: datetime, grace: timedelta
) -> ColumnElement[bool]:
    """SQL for "the user has this tier now", over a user id and a tier id (columns or values)."""
    comp = (
        exists()
        .where(
            col(CompGrant.user_id) == user_id,
            *running_comp(now),
            or_(col(CompGrant.tier_id).is_(None), col(CompGrant.tier_id) == tier_id),
        )
        .correlate_except(CompGrant)
    )
    return or_(paying_condition(user_id, tier_id, now, grace), comp)


def free_condition(user_id: Any, now: datetime, grace: timedelta) -> ColumnElement[bool]:
    """SQL for "the user has no paid tier now"."""
    some_tier = select(Tier.id).where(tier_condition(user_id, col(Tier.id), now, grace))
    return not_(some_tier.correlate_except(Tier).exists())


async def tiers_of(
    session: AsyncSession, user_ids: Sequence[int], now: datetime, grace: timedelta
) -> dict[int, list[str]]:
    """Each of these members' tiers now (slugs, in display order); no entry for none."""
    if not user_ids:
        return {}
    holders = union(
        select(Subscription.user_id).where(col(Subscription.user_id).in_(user_ids)),
        select(CompGrant.user_id).where(col(CompGrant.user_id).in_(user_ids)),
    ).subquery()
    rows = await session.exec(
        select(holders.c.user_id, Tier.slug)
        .select_from(holders)
        .join(Tier, true())
        .where(tier_condition(holders.c.user_id, col(Tier.id), now, grace))
        .order_by(holders.c.user_id, col(Tier.sort_order), col(Tier.id))
    )
    out: dict[int, list[str]] = {}
    for user_id, slug in rows:
        out.setdefault(user_id, []).append(slug)
    return out


async def paid_tiers_among(
    session: AsyncSession, user_ids: Sequence[int], now: datetime, grace: timedelta
) -> Sequence[tuple[int, int]]:
    """(user id, tier id) for each tier these members hold now by an entitling subscription
    (a plan kept after a downgrade included)."""
    if not user_ids:
        return []
    rows = await session.exec(
        select(Subscription.user_id, Plan.tier_id)
        .join(Plan, held_plan(now))
        .where(col(Subscription.user_id).in_(user_ids), entitling_subscription(now, grace))
        .distinct()
    )
    return rows.all()


async def running_comps_of(
    session: AsyncSession, user_ids: Sequence[int], now: datetime
) -> Sequence[tuple[int, int, str | None, datetime, datetime | None, str]]:
    """(user id, comp id, tier slug or None for every tier, starts, ends, reason) of these
    members' comps running at `now`, oldest first."""
    if not user_ids:
        return []
    rows = await session.exec(
        select(CompGrant, col(Tier.slug))
        .outerjoin(Tier, col(Tier.id) == col(CompGrant.tier_id))
        .where(col(CompGrant.user_id).in_(user_ids), *running_comp(now))
        .order_by(col(CompGrant.id))
    )
    return [(g.user_id, pk(g.id), slug, g.starts_at, g.ends_at, g.reason) for g, slug in rows]


async def entitling_amounts_by_tier(
    session: AsyncSession, now: datetime, grace: timedelta
) -> Sequence[tuple[int, str, int, str]]:
    """(tier id, currency, amount, interval) of every entitling subscription that is not a
    trial, by its plan's tier."""
    rows = await session.exec(
        select(Plan.tier_id, Subscription.currency, Subscription.amount, Subscription.interval)
        .join(Plan, col(Plan.id) == col(Subscription.plan_id))
        .where(entitling_subscription(now, grace), col(Subscription.status) != "trialing")
    )
    return rows.all()
