"""Publication numbers, computed from stored facts (subscription history, payments, events),
never from counters that could drift."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.accounts.repository import MemberConditions
from app.billing import repository as billing_repo
from app.billing.models import SubscriptionChange
from app.billing.repository import comp_condition, paid_condition, tier_members
from app.billing.repository import members as billing
from app.core.config import Settings
from app.core.db import pk, utcnow
from app.newsletter import repository as newsletter

# Revenue-bearing statuses for MRR: paying now (trials are not revenue yet).
MRR_STATUSES = ("active", "past_due")
PAYING = frozenset(MRR_STATUSES)
CHURNED = frozenset({"canceled", "unpaid", "incomplete_expired", "paused"})


def monthly(amount: int, interval: str) -> float:
    """An amount per interval, as an amount per month."""
    return amount / 12 if interval == "year" else float(amount)


async def totals(session: AsyncSession, settings: Settings) -> dict[str, int]:
    now, grace = utcnow(), timedelta(days=settings.billing_grace_days)
    members = await accounts.count_readers(session)
    paid = await accounts.count_readers(session, lambda uid: [paid_condition(uid, now, grace)])
    comped = await accounts.count_readers(session, lambda uid: [comp_condition(uid, now)])
    return {
        "members": members,
        "free": members - paid,
        "paid": paid,
        "comped": comped,
        "newsletter_subscribers": await newsletter.active_subscriber_count(session),
    }


async def mrr(session: AsyncSession) -> dict[str, float]:
    """Monthly recurring revenue per currency, in the currency's smallest unit."""
    out: dict[str, float] = defaultdict(float)
    for currency, amount, interval in await billing.recurring_amounts(session, MRR_STATUSES):
        out[currency] += monthly(amount, interval)
    return {currency: round(value, 2) for currency, value in sorted(out.items())}


TierCondition = Callable[[Any, Any, datetime, timedelta], ColumnElement[bool]]


def _in_tier(
    condition: TierCondition, tier_id: int, now: datetime, grace: timedelta
) -> MemberConditions:
    return lambda uid: [condition(uid, tier_id, now, grace)]


async def by_tier(session: AsyncSession, settings: Settings) -> list[dict[str, Any]]:
    """Per tier, in display order (archived ones too: their subscribers keep them): the
    readers who have it now, those who pay for it, those who have it by a comp only (a comp
    without a tier counts in every tier), and its MRR per currency (its entitling
    subscriptions that are not trials, yearly / 12; comps add nothing)."""
    now, grace = utcnow(), timedelta(days=settings.billing_grace_days)
    revenue: dict[int, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for tier_id, currency, amount, interval in await tier_members.entitling_amounts_by_tier(
        session, now, grace
    ):
        revenue[tier_id][currency] += monthly(amount, interval)
    out = []
    for tier in await billing_repo.all_tiers(session):
        tier_id = pk(tier.id)
        members = await accounts.count_readers(
            session, _in_tier(tier_members.tier_condition, tier_id, now, grace)
        )
        paying = await accounts.count_readers(
            session, _in_tier(tier_members.paying_condition, tier_id, now, grace)
        )
        mrr_of = revenue.get(tier_id, {})
        out.append(
            {
                "tier": tier.slug,
                "name": tier.name,
                "active": tier.active,
                "members": members,
                "paying": paying,
                "comped": members - paying,
                "mrr": {c: round(v, 2) for c, v in sorted(mrr_of.items())},
            }
        )
    return out


Direction = Literal["upgrade", "downgrade"]


def _direction(
    change: SubscriptionChange, prices: dict[int | None, tuple[str, float]]
) -> Direction | None:
    # A tier change is an upgrade when the new plan costs more a month (yearly / 12) than the
    # old one did, as POST /me/subscription/change decides; plan prices never change, so
    # history keeps its answer. The same price, another currency or a plan gone: neither.
    old, new = prices.get(change.from_plan_id), prices.get(change.to_plan_id)
    if old is None or new is None or old[0] != new[0] or old[1] == new[1]:
        return None
    return "upgrade" if new[1] > old[1] else "downgrade"


def _is_tier_change(change: SubscriptionChange) -> bool:
    return None not in (change.from_tier_id, change.to_tier_id) and (
        change.from_tier_id != change.to_tier_id
    )


async def daily(session: AsyncSession, start: date, end: date) -> list[dict[str, Any]]:
    """New paid and churned subscriptions, and tier changes (upgrades, downgrades, all), per
    day in [start, end]."""
    changes = await billing.status_changes_between(
        session,
        datetime.combine(start, time.min, UTC),
        datetime.combine(end + timedelta(days=1), time.min, UTC),
    )
    prices: dict[int | None, tuple[str, float]] = {
        p.id: (p.currency, monthly(p.amount, p.interval))
        for p in await billing_repo.all_plans(session)
    }
    days: dict[date, dict[str, int]] = {}
    cursor = start
    while cursor <= end:
        days[cursor] = dict.fromkeys(
            ("new_paid", "churned", "upgrades", "downgrades", "tier_changes"), 0
        )
        cursor += timedelta(days=1)
    for change in changes:
        day = days.get(change.occurred_at.date())
        if day is None:
            continue
        # Paying means active or past_due: a trial start is not revenue (see `trials`), and a
        # trial that converts counts as new paid on the day it does.
        was_paying = change.from_status in PAYING
        if change.to_status == "active" and not was_paying:
            day["new_paid"] += 1
        elif change.to_status in CHURNED and was_paying:
            day["churned"] += 1
        if _is_tier_change(change):
            day["tier_changes"] += 1
            direction = _direction(change, prices)
            if direction is not None:
                day[f"{direction}s"] += 1
    return [{"date": d.isoformat(), **v} for d, v in days.items()]


async def trials(session: AsyncSession) -> dict[str, Any]:
    started_n, converted_n = await billing.trial_counts(session)
    return {
        "started": started_n,
        "converted": converted_n,
        "rate": round(converted_n / started_n, 4) if started_n else None,
    }


async def conversions_by_article(session: AsyncSession) -> list[dict[str, Any]]:
    return [
        {"article_slug": slug, "checkouts_started": s, "checkouts_completed": c}
        for slug, s, c in await billing.checkouts_by_article(session)
    ]


async def signups_by_source(session: AsyncSession) -> dict[str, int]:
    """Sign-ups (accounts and newsletter) counted by where their consent was given."""
    return await accounts.signups_by_source(session)


async def revenue(session: AsyncSession) -> dict[str, dict[str, int]]:
    rows = await billing.payments_by_currency(session)
    return {c: {"paid": int(p or 0), "refunded": int(r or 0)} for c, p, r in sorted(rows)}


async def newsletter_issues(session: AsyncSession, limit: int = 20) -> list[dict[str, Any]]:
    out = []
    for issue in await newsletter.latest_issues(session, limit):
        counts = await newsletter.delivery_counts(session, issue.id)
        out.append(
            {
                "issue_id": issue.id,
                "subject": issue.subject,
                "status": issue.status,
                "sent": counts.get("sent", 0),
                "failed": counts.get("failed", 0),
                "unsubscribes": await newsletter.unsubscribes_from(session, issue.id),
            }
        )
    return out


async def report(
    session: AsyncSession, settings: Settings, start: date, end: date
) -> dict[str, Any]:
    return {
        "totals": await totals(session, settings),
        "mrr": await mrr(session),
        "tiers": await by_tier(session, settings),
        "revenue": await revenue(session),
        "daily": await daily(session, start, end),
        "trials": await trials(session),
        "conversions_by_article": await conversions_by_article(session),
        "signups_by_source": await signups_by_source(session),
        "newsletter_issues": await newsletter_issues(session),
    }
