"""Every statement the staff console runs for members and the audit log.

Billing's and the newsletter's tables are read here through the conditions those domains
export (`paid_condition`, `comp_condition`); the member detail's billing and newsletter
reads still name their tables, until those domains' repositories export them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, delete, exists, func, not_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Consent, Role, User
from app.admin.models import AuditEntry, MemberLabel
from app.billing.models import BillingCustomer, Plan, StripeEvent, Subscription, SubscriptionChange
from app.billing.repository import comp_condition, paid_condition
from app.core.db import as_utc, utcnow
from app.core.pagination import newest_first
from app.newsletter.models import Newsletter, NewsletterSubscription, Subscriber


@dataclass(frozen=True)
class MemberFilters:
    q: str | None = None
    role: str | None = None
    access: str | None = None  # free | paid
    plan_id: int | None = None
    status: str | None = None  # a subscription status
    newsletter: str | None = None  # slug
    created_from: datetime | None = None
    created_to: datetime | None = None
    comped: bool | None = None
    bounced: bool | None = None
    label: str | None = None


@dataclass(frozen=True)
class AuditFilters:
    actor: int | None = None
    entity: str | None = None
    entity_id: str | None = None
    action: str | None = None


def _text_conditions(f: MemberFilters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = [col(User.deleted_at).is_(None)]
    if f.q:
        like = f"%{f.q.strip().lower()}%"
        out.append(or_(col(User.email).like(like), func.lower(User.display_name).like(like)))
    if f.role:
        out.append(col(User.role) == f.role)
    if f.created_from:
        out.append(col(User.created_at) >= as_utc(f.created_from))
    if f.created_to:
        out.append(col(User.created_at) < as_utc(f.created_to))
    if f.label:
        out.append(
            exists().where(col(MemberLabel.user_id) == User.id, col(MemberLabel.label) == f.label)
        )
    return out


def _billing_conditions(f: MemberFilters, grace_days: int) -> list[ColumnElement[bool]]:
    now, grace = utcnow(), timedelta(days=grace_days)
    out: list[ColumnElement[bool]] = []
    if f.access == "paid":
        out.append(paid_condition(User.id, now, grace))
    elif f.access == "free":
        out.append(not_(paid_condition(User.id, now, grace)))
    if f.plan_id is not None or f.status:
        sub = exists().where(col(Subscription.user_id) == User.id)
        if f.plan_id is not None:
            sub = sub.where(col(Subscription.plan_id) == f.plan_id)
        if f.status:
            sub = sub.where(col(Subscription.status) == f.status)
        out.append(sub)
    if f.comped is not None:
        comp = comp_condition(User.id, now)
        out.append(comp if f.comped else not_(comp))
    return out


def _newsletter_conditions(f: MemberFilters) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.newsletter:
        out.append(
            exists()
            .where(col(Subscriber.user_id) == User.id)
            .where(col(NewsletterSubscription.subscriber_id) == Subscriber.id)
            .where(col(NewsletterSubscription.active).is_(True))
            .where(col(Newsletter.id) == NewsletterSubscription.newsletter_id)
            .where(col(Newsletter.slug) == f.newsletter)
        )
    if f.bounced is not None:
        bounced = exists().where(
            col(Subscriber.user_id) == User.id, col(Subscriber.status) == "bounced"
        )
        out.append(bounced if f.bounced else not_(bounced))
    return out


async def search_members(
    session: AsyncSession,
    filters: MemberFilters,
    *,
    grace_days: int,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    """Give back one page of members matching the filters, newest first."""
    conditions = [
        *_text_conditions(filters),
        *_billing_conditions(filters, grace_days),
        *_newsletter_conditions(filters),
    ]
    query = select(User).where(*conditions)
    return await newest_first(session, query, col(User.id), limit=limit, cursor=cursor)


async def labels_of(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, list[str]]:
    """Give back each member's labels, alphabetically."""
    out: dict[int, list[str]] = {}
    if not user_ids:
        return out
    rows = await session.exec(
        select(MemberLabel.user_id, MemberLabel.label)
        .where(col(MemberLabel.user_id).in_(list(user_ids)))
        .order_by(col(MemberLabel.label))
    )
    for user_id, label in rows:
        out.setdefault(user_id, []).append(label)
    return out


async def replace_labels(session: AsyncSession, user_id: int, labels: Sequence[str]) -> None:
    """Put exactly these labels on the member."""
    for old in (
        await session.exec(select(MemberLabel).where(MemberLabel.user_id == user_id))
    ).all():
        await session.delete(old)
    await session.flush()
    for label in labels:
        session.add(MemberLabel(user_id=user_id, label=label))
    await session.flush()


async def count_admins_locked(session: AsyncSession) -> int:
    """Give back how many working admins there are, holding their rows until commit.

    Locked, so two admins demoting or disabling each other at once cannot both see "two":
    the second waits for the first, then counts again (PostgreSQL; SQLite lets one writer in).
    """
    rows = await session.exec(
        select(User.id)
        .where(
            User.role == Role.admin.value,
            col(User.disabled).is_(False),
            col(User.deleted_at).is_(None),
        )
        .with_for_update()
    )
    return len(rows.all())


async def subscriptions_of(session: AsyncSession, user_id: int) -> Sequence[Subscription]:
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


async def billing_events(session: AsyncSession, user_id: int) -> Sequence[StripeEvent]:
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


async def consents_of(session: AsyncSession, user_id: int) -> Sequence[Consent]:
    """The member's recorded consents."""
    return (await session.exec(select(Consent).where(Consent.user_id == user_id))).all()


async def newsletter_slugs_of(session: AsyncSession, user_id: int) -> Sequence[str]:
    """The slugs of the newsletters the member actively follows."""
    query = (
        select(Newsletter.slug)
        .join(NewsletterSubscription, col(NewsletterSubscription.newsletter_id) == Newsletter.id)
        .join(Subscriber, col(Subscriber.id) == NewsletterSubscription.subscriber_id)
        .where(Subscriber.user_id == user_id, col(NewsletterSubscription.active).is_(True))
    )
    return (await session.exec(query)).all()


async def plan_names(session: AsyncSession) -> dict[int | None, str]:
    """Every plan's name by id."""
    return {p.id: p.name for p in (await session.exec(select(Plan))).all()}


async def newsletter_by_slug(session: AsyncSession, slug: str) -> Newsletter | None:
    """The newsletter with this slug, if any."""
    return (await session.exec(select(Newsletter).where(Newsletter.slug == slug))).first()


async def audit_page(
    session: AsyncSession, filters: AuditFilters, *, limit: int, cursor: str | None
) -> tuple[list[AuditEntry], str | None]:
    """One page of audit entries matching the filters, newest first."""
    query = select(AuditEntry)
    if filters.actor is not None:
        query = query.where(AuditEntry.actor_id == filters.actor)
    if filters.entity:
        query = query.where(AuditEntry.entity == filters.entity)
    if filters.entity_id:
        query = query.where(AuditEntry.entity_id == filters.entity_id)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    return await newest_first(session, query, col(AuditEntry.id), limit=limit, cursor=cursor)


async def label_names(session: AsyncSession, user_id: int) -> Sequence[str]:
    """The member's labels, in storage order."""
    return (
        await session.exec(select(MemberLabel.label).where(MemberLabel.user_id == user_id))
    ).all()


async def delete_labels(session: AsyncSession, user_id: int) -> None:
    """Remove every label from the member."""
    await session.exec(delete(MemberLabel).where(col(MemberLabel.user_id) == user_id))
