"""Publication numbers, computed from stored facts (subscription history, payments, events),
never from counters that could drift."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Consent, ConsentDocument, Role, User
from app.billing.models import CheckoutRecord, Payment, Subscription, SubscriptionChange
from app.billing.repository import comp_condition, paid_condition
from app.core.config import Settings
from app.core.db import utcnow
from app.newsletter.models import Delivery, NewsletterIssue, NewsletterSubscription, Subscriber

# Revenue-bearing statuses for MRR: paying now (trials are not revenue yet).
MRR_STATUSES = ("active", "past_due")
PAYING = frozenset(MRR_STATUSES)
CHURNED = frozenset({"canceled", "unpaid", "incomplete_expired", "paused"})


def monthly(amount: int, interval: str) -> float:
    """An amount per interval, as an amount per month."""
    return amount / 12 if interval == "year" else float(amount)


async def totals(session: AsyncSession, settings: Settings) -> dict[str, int]:
    now, grace = utcnow(), timedelta(days=settings.billing_grace_days)
    readers = [col(User.deleted_at).is_(None), col(User.role) == Role.reader.value]

    async def count(*conditions: Any) -> int:
        result = await session.exec(
            select(func.count()).select_from(User).where(*readers, *conditions)
        )
        return int(result.one())

    members = await count()
    paid = await count(paid_condition(User.id, now, grace))
    comped = await count(comp_condition(User.id, now))
    subscribers = await session.exec(
        select(func.count(func.distinct(Subscriber.id)))
        .join(NewsletterSubscription, col(NewsletterSubscription.subscriber_id) == Subscriber.id)
        .where(Subscriber.status == "active", col(NewsletterSubscription.active).is_(True))
    )
    return {
        "members": members,
        "free": members - paid,
        "paid": paid,
        "comped": comped,
        "newsletter_subscribers": int(subscribers.one()),
    }


async def mrr(session: AsyncSession) -> dict[str, float]:
    """Monthly recurring revenue per currency, in the currency's smallest unit."""
    rows = await session.exec(
        select(Subscription.currency, Subscription.amount, Subscription.interval).where(
            col(Subscription.status).in_(MRR_STATUSES)
        )
    )
    out: dict[str, float] = defaultdict(float)
    for currency, amount, interval in rows:
        out[currency] += monthly(amount, interval)
    return {currency: round(value, 2) for currency, value in sorted(out.items())}


async def daily(session: AsyncSession, start: date, end: date) -> list[dict[str, Any]]:
    """New paid and churned subscriptions per day in [start, end]."""
    changes = (
        await session.exec(
            select(SubscriptionChange)
            .where(
                col(SubscriptionChange.occurred_at) >= datetime.combine(start, time.min, UTC),
                col(SubscriptionChange.occurred_at)
                < datetime.combine(end + timedelta(days=1), time.min, UTC),
            )
            .order_by(col(SubscriptionChange.occurred_at))
        )
    ).all()
    days: dict[date, dict[str, int]] = {}
    cursor = start
    while cursor <= end:
        days[cursor] = {"new_paid": 0, "churned": 0}
        cursor += timedelta(days=1)
    for change in changes:
        day = change.occurred_at.date()
        if day not in days:
            continue
        # Paying means active or past_due: a trial start is not revenue (see `trials`), and a
        # trial that converts counts as new paid on the day it does.
        was_paying = change.from_status in PAYING
        if change.to_status == "active" and not was_paying:
            days[day]["new_paid"] += 1
        elif change.to_status in CHURNED and was_paying:
            days[day]["churned"] += 1
    return [{"date": d.isoformat(), **v} for d, v in days.items()]


async def trials(session: AsyncSession) -> dict[str, Any]:
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
    started_n, converted_n = int(started.one()), int(converted.one())
    return {
        "started": started_n,
        "converted": converted_n,
        "rate": round(converted_n / started_n, 4) if started_n else None,
    }


async def conversions_by_article(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.exec(
        select(
            CheckoutRecord.article_slug,
            func.count(),
            func.count(col(CheckoutRecord.completed_at)),
        )
        .where(col(CheckoutRecord.article_slug).is_not(None))
        .group_by(col(CheckoutRecord.article_slug))
        .order_by(
            func.count(col(CheckoutRecord.completed_at)).desc(), col(CheckoutRecord.article_slug)
        )
    )
    return [
        {"article_slug": slug, "checkouts_started": s, "checkouts_completed": c}
        for slug, s, c in rows
    ]


async def signups_by_source(session: AsyncSession) -> dict[str, int]:
    """Sign-ups (accounts and newsletter) counted by where their consent was given."""
    rows = await session.exec(
        select(Consent.source, func.count())
        .where(Consent.document == ConsentDocument.terms.value)
        .group_by(col(Consent.source))
    )
    return dict(sorted(rows.all()))


async def revenue(session: AsyncSession) -> dict[str, dict[str, int]]:
    rows = await session.exec(
        select(
            Payment.currency, func.sum(Payment.amount), func.sum(Payment.refunded_amount)
        ).group_by(col(Payment.currency))
    )
    return {c: {"paid": int(p or 0), "refunded": int(r or 0)} for c, p, r in sorted(rows.all())}


async def newsletter_issues(session: AsyncSession, limit: int = 20) -> list[dict[str, Any]]:
    issues = (
        await session.exec(
            select(NewsletterIssue).order_by(col(NewsletterIssue.id).desc()).limit(limit)
        )
    ).all()
    out = []
    for issue in issues:
        counts = dict(
            (
                await session.exec(
                    select(Delivery.status, func.count())
                    .where(Delivery.issue_id == issue.id)
                    .group_by(col(Delivery.status))
                )
            ).all()
        )
        unsubscribes = await session.exec(
            select(func.count()).where(
                NewsletterSubscription.unsubscribed_from_issue_id == issue.id
            )
        )
        out.append(
            {
                "issue_id": issue.id,
                "subject": issue.subject,
                "status": issue.status,
                "sent": counts.get("sent", 0),
                "failed": counts.get("failed", 0),
                "unsubscribes": int(unsubscribes.one()),
            }
        )
    return out


async def report(
    session: AsyncSession, settings: Settings, start: date, end: date
) -> dict[str, Any]:
    return {
        "totals": await totals(session, settings),
        "mrr": await mrr(session),
        "revenue": await revenue(session),
        "daily": await daily(session, start, end),
        "trials": await trials(session),
        "conversions_by_article": await conversions_by_article(session),
        "signups_by_source": await signups_by_source(session),
        "newsletter_issues": await newsletter_issues(session),
    }
