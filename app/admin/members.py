"""Members for staff: search and filters, detail, role and status changes, labels."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, exists, func, not_, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import service as accounts
from app.accounts.models import Consent, Role, User
from app.admin.models import MemberLabel
from app.billing.models import BillingCustomer, Plan, StripeEvent, Subscription, SubscriptionChange
from app.billing.repository import comp_condition, paid_condition
from app.comments.models import Comment
from app.core.config import Settings
from app.core.db import as_utc, pk, utcnow
from app.core.errors import Conflict, Forbidden
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


def _conditions(f: MemberFilters, settings: Settings) -> list[ColumnElement[bool]]:
    now, grace = utcnow(), timedelta(days=settings.billing_grace_days)
    out: list[ColumnElement[bool]] = [col(User.deleted_at).is_(None)]
    if f.q:
        like = f"%{f.q.strip().lower()}%"
        out.append(or_(col(User.email).like(like), func.lower(User.display_name).like(like)))
    if f.role:
        out.append(col(User.role) == f.role)
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
    if f.newsletter:
        out.append(
            exists()
            .where(col(Subscriber.user_id) == User.id)
            .where(col(NewsletterSubscription.subscriber_id) == Subscriber.id)
            .where(col(NewsletterSubscription.active).is_(True))
            .where(col(Newsletter.id) == NewsletterSubscription.newsletter_id)
            .where(col(Newsletter.slug) == f.newsletter)
        )
    if f.created_from:
        out.append(col(User.created_at) >= as_utc(f.created_from))
    if f.created_to:
        out.append(col(User.created_at) < as_utc(f.created_to))
    if f.comped is not None:
        comp = comp_condition(User.id, now)
        out.append(comp if f.comped else not_(comp))
    if f.bounced is not None:
        bounced = exists().where(
            col(Subscriber.user_id) == User.id, col(Subscriber.status) == "bounced"
        )
        out.append(bounced if f.bounced else not_(bounced))
    if f.label:
        out.append(
            exists().where(col(MemberLabel.user_id) == User.id, col(MemberLabel.label) == f.label)
        )
    return out


async def search(
    session: AsyncSession,
    settings: Settings,
    filters: MemberFilters,
    *,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    """Give back one page of members, newest first."""
    query = select(User).where(*_conditions(filters, settings))
    return await newest_first(session, query, col(User.id), limit=limit, cursor=cursor)


async def labels_of(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, list[str]]:
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


async def detail(session: AsyncSession, member: User) -> dict[str, Any]:
    """Everything staff need about one member."""
    user_id = pk(member.id)
    subs = (await session.exec(select(Subscription).where(Subscription.user_id == user_id))).all()
    history = (
        await session.exec(
            select(SubscriptionChange)
            .where(SubscriptionChange.user_id == user_id)
            .order_by(col(SubscriptionChange.occurred_at))
        )
    ).all()
    customer = await session.get(BillingCustomer, user_id)
    events = []
    if customer is not None:
        events = list(
            (
                await session.exec(
                    select(StripeEvent)
                    .where(StripeEvent.customer_id == customer.customer_id)
                    .order_by(col(StripeEvent.id).desc())
                    .limit(50)
                )
            ).all()
        )
    consents = (await session.exec(select(Consent).where(Consent.user_id == user_id))).all()
    newsletters = (
        await session.exec(
            select(Newsletter.slug)
            .join(
                NewsletterSubscription, col(NewsletterSubscription.newsletter_id) == Newsletter.id
            )
            .join(Subscriber, col(Subscriber.id) == NewsletterSubscription.subscriber_id)
            .where(Subscriber.user_id == user_id, col(NewsletterSubscription.active).is_(True))
        )
    ).all()
    comments = (
        await session.exec(
            select(func.count()).select_from(Comment).where(Comment.author_id == user_id)
        )
    ).one()
    plans = {p.id: p.name for p in (await session.exec(select(Plan))).all()}
    return {
        "subscriptions": [
            {
                "id": s.id,
                "status": s.status,
                "plan": plans.get(s.plan_id),
                "amount": s.amount,
                "currency": s.currency,
                "interval": s.interval,
                "cancel_at_period_end": s.cancel_at_period_end,
                "current_period_end": s.current_period_end,
            }
            for s in subs
        ],
        "subscription_history": [
            {
                "subscription_id": h.subscription_id,
                "from": h.from_status,
                "to": h.to_status,
                "at": h.occurred_at,
            }
            for h in history
        ],
        "billing_events": [
            {
                "id": e.id,
                "event_id": e.event_id,
                "type": e.type,
                "status": e.status,
                "received_at": e.received_at,
                "error": e.error,
            }
            for e in events
        ],
        "consents": [
            {
                "document": c.document,
                "version": c.version,
                "accepted_at": c.accepted_at,
                "ip": c.ip,
                "source": c.source,
            }
            for c in consents
        ],
        "newsletters": list(newsletters),
        "comment_count": comments,
    }


async def change(
    session: AsyncSession,
    actor: User,
    member: User,
    *,
    role: Role | None,
    disabled: bool | None,
    labels: Sequence[str] | None,
) -> User:
    """Apply a staff change to a member; roles are admin-only and the last admin stays."""
    if role is not None and role.value != member.role:
        if actor.role != Role.admin.value:
            raise Forbidden("Only admins change roles.", code="role_forbidden")
        if member.role == Role.admin.value and await _admins(session) <= 1:
            raise Conflict("The last admin cannot stop being an admin.", code="last_admin")
        member.role = role.value
    if disabled is not None and disabled != member.disabled:
        if disabled and member.role == Role.admin.value and await _admins(session) <= 1:
            raise Conflict("The last admin cannot be disabled.", code="last_admin")
        member.disabled = disabled
        if disabled:
            await accounts.revoke_all_sessions(session, member)
    session.add(member)
    if labels is not None:
        for old in (
            await session.exec(select(MemberLabel).where(MemberLabel.user_id == member.id))
        ).all():
            await session.delete(old)
        await session.flush()
        for label in dict.fromkeys(" ".join(x.split()) for x in labels if x.strip()):
            session.add(MemberLabel(user_id=pk(member.id), label=label))
        await session.flush()
    return member


async def _admins(session: AsyncSession) -> int:
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
