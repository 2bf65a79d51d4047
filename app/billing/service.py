"""Billing rules: plans, the reader's subscription, cancel and resume, complimentary access,
account deletion, reconciliation with the provider (tiers and prices at the provider:
tiers.py; checkout and portal: checkout.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.entitlements import ENTITLING, SubscriptionFacts, subscription_entitles
from app.accounts import service as accounts
from app.accounts.models import User
from app.admin import audit
from app.billing import provider_state, repository, tiers
from app.billing.errors import (
    NoSubscription,
    PaymentProviderUnavailable,
    PlanNotFound,
    PriceImmutable,
    TierArchived,
    UnknownTier,
)
from app.billing.gateway import GatewayError, PaymentGateway, SubscriptionState
from app.billing.models import CompGrant, Plan, Subscription
from app.billing.schemas import MySubscription, PlanCreate, PlanOut, PlanUpdate
from app.core.cache import invalidate_on_commit
from app.core.config import Settings
from app.core.db import Database, pk, utcnow
from app.core.errors import NotFound


async def plans_on_sale(session: AsyncSession) -> Sequence[Plan]:
    """The plans on sale, in display order."""
    return await repository.plans_on_sale(session)


def _entitling(subs: Sequence[Subscription], settings: Settings) -> Subscription | None:
    grace = timedelta(days=settings.billing_grace_days)
    now = utcnow()
    for sub in subs:
        facts = SubscriptionFacts(
            sub.status, sub.current_period_end, sub.cancel_at_period_end, sub.past_due_since
        )
        if subscription_entitles(facts, now, grace):
            return sub
    return None


async def entitling_subscription(
    session: AsyncSession, user_id: int, settings: Settings
) -> Subscription | None:
    """Give back the reader's subscription that currently gives access, if any."""
    return _entitling(await repository.subscriptions_of(session, user_id), settings)


async def reader_subscription(
    session: AsyncSession, settings: Settings, user: User
) -> MySubscription:
    """The reader's access level, plan, status, renewal or end date, grace state and
    complimentary access."""
    user_id = pk(user.id)
    level = await repository.user_reader_level(
        session, user, grace_days=settings.billing_grace_days
    )
    subs = await repository.subscriptions_of(session, user_id)
    sub = _entitling(subs, settings) or (subs[0] if subs else None)
    plan = await repository.plan(session, sub.plan_id) if sub and sub.plan_id else None
    comp = await active_comp(session, user_id)
    kept = await _kept_plan(session, sub)
    return MySubscription(
        access_level=level.label,
        plan=PlanOut.model_validate(plan, from_attributes=True) if plan else None,
        kept_plan=PlanOut.model_validate(kept, from_attributes=True) if kept else None,
        kept_until=sub.kept_until if kept and sub else None,
        complimentary=comp is not None,
        complimentary_until=comp.ends_at if comp else None,
        **_dates(sub, timedelta(days=settings.billing_grace_days)),
    )


async def _kept_plan(session: AsyncSession, sub: Subscription | None) -> Plan | None:
    """The higher plan a downgrade at period end keeps, while it is kept."""
    if sub is None or sub.kept_plan_id is None or sub.kept_until is None:
        return None
    if utcnow() >= sub.kept_until:
        return None
    return await repository.plan(session, sub.kept_plan_id)


def _dates(sub: Subscription | None, grace: timedelta) -> dict[str, Any]:
    """What `MySubscription` says of one subscription: status, renewal or end, grace."""
    if sub is None:
        return {"status": None, "cancel_at_period_end": False, "renews_at": None,
                "ends_at": None, "in_grace_period": False, "grace_ends_at": None}  # fmt: skip
    grace_end = None
    if sub.status == "past_due" and sub.past_due_since:
        grace_end = sub.past_due_since + grace
    canceled = sub.status == "canceled"
    return {
        "status": sub.status,
        "cancel_at_period_end": sub.cancel_at_period_end,
        "renews_at": None if sub.cancel_at_period_end or canceled else sub.current_period_end,
        "ends_at": (sub.current_period_end if sub.cancel_at_period_end else None)
        or (sub.canceled_at if canceled else None),
        "in_grace_period": grace_end is not None,
        "grace_ends_at": grace_end,
    }


async def change_renewal(
    read: AsyncSession,
    session: AsyncSession,
    gateway: PaymentGateway,
    settings: Settings,
    user: User,
    *,
    cancel: bool,
) -> MySubscription:
    """Cancel at period end (or resume) the reader's subscription, at the provider and here
    (the provider first, outside any write transaction); give back the reader's
    subscription as it is then."""
    user_id = pk(user.id)
    sub = await entitling_subscription(read, user_id, settings)
    if sub is None or sub.status not in ENTITLING | {"past_due"}:
        raise NoSubscription("There is no active subscription to change.")
    try:
        state = await gateway.set_cancel_at_period_end(sub.provider_subscription_id, cancel)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    await provider_state.copy_and_load(
        session, state, user_id=user_id, provider=sub.provider, event_id=None
    )
    return await reader_subscription(session, settings, user)


@dataclass(frozen=True)
class Ended:
    """What the provider said when a reader's account went: to copy in the write phase."""

    states: list[tuple[str, SubscriptionState]]
    customer_id: str | None


async def end_at_provider(read: AsyncSession, gateway: PaymentGateway, user: User) -> Ended:
    """End every live subscription of a reader at the provider at once and delete its
    customer there (account deletion); nothing is written here."""
    user_id = pk(user.id)
    states = []
    try:
        for sub in await repository.subscriptions_of(read, user_id):
            if sub.status not in {"canceled", "incomplete_expired"}:
                states.append(
                    (sub.provider, await gateway.cancel_now(sub.provider_subscription_id))
                )
        link = await repository.customer_of_user(read, user_id)
        if link is not None:
            await gateway.delete_customer(link.customer_id)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    return Ended(states, link.customer_id if link is not None else None)


async def forget_customer(session: AsyncSession, user: User, ended: Ended) -> None:
    """Copy the ended subscriptions and drop the personal data of the reader's billing events
    (payment records themselves stay, as the law asks; they hold no name or email)."""
    user_id = pk(user.id)
    for provider, state in ended.states:
        await provider_state.copy_and_load(
            session, state, user_id=user_id, provider=provider, event_id=None
        )
    if ended.customer_id is not None:
        await redact_events(session, ended.customer_id)


# Keys of a Stripe object that carry a person's details: names, addresses, emails, phones.
_PERSONAL = frozenset(
    {"email", "name", "phone", "address", "shipping", "billing_details", "customer_email",
     "customer_name", "customer_phone", "customer_address", "customer_shipping",
     "customer_details", "receipt_email"}
)  # fmt: skip


def _redacted(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: None if k in _PERSONAL else _redacted(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_redacted(v) for v in node]
    return node


async def redact_events(session: AsyncSession, customer_id: str) -> None:
    """Remove the personal details stored in the payloads of a customer's Stripe events."""
    for row in await repository.events_of_customer(session, customer_id):
        row.payload = json.dumps(_redacted(json.loads(row.payload)))
        await repository.save(session, row)


async def grant_comp(
    session: AsyncSession,
    admin: User,
    member_id: int,
    *,
    ends_at: datetime | None,
    reason: str,
    tier: str | None = None,
) -> CompGrant:
    """Give a live member complimentary access to one tier (by slug), or to every tier
    without one (NotFound for an unknown or deleted member; UnknownTier, TierArchived)."""
    member = await accounts.live_member(session, member_id)
    tier_id = await _comp_tier(session, tier) if tier is not None else None
    grant = CompGrant(
        user_id=pk(member.id), granted_by_id=admin.id, ends_at=ends_at, reason=reason,
        tier_id=tier_id,
    )  # fmt: skip
    await repository.add(session, grant)
    return grant


async def _comp_tier(session: AsyncSession, slug: str) -> int:
    found = await repository.tier_by_slug(session, slug)
    if found is None:
        raise UnknownTier("No tier has this slug.")
    if not found.active:
        raise TierArchived("The tier is archived; restore it first.")
    return pk(found.id)


async def revoke_comps(session: AsyncSession, member_id: int) -> None:
    """End a live member's complimentary access now; NotFound when they have none running."""
    member = await accounts.live_member(session, member_id)
    grants = await repository.open_comp_grants(session, pk(member.id))
    if not grants:
        raise NotFound("The member has no complimentary access.", code="comp_not_found")
    now = utcnow()
    for grant in grants:
        grant.revoked_at = now
        await repository.save(session, grant)


async def active_comp(session: AsyncSession, user_id: int) -> CompGrant | None:
    now = utcnow()
    for grant in await repository.open_comp_grants(session, user_id):
        if grant.starts_at <= now and (grant.ends_at is None or now < grant.ends_at):
            return grant
    return None


async def all_plans(session: AsyncSession) -> Sequence[Plan]:
    """Every plan, on sale or not, in display order."""
    return await repository.all_plans(session)


async def create_plan(
    db: Database, gateway: PaymentGateway, data: PlanCreate, *, actor: audit.Actor | None
) -> Plan:
    """Create a plan in its tier (the default tier when it names none); without a price id,
    its price is made at the provider under the tier's product (made there too if needed).

    The provider's objects are keyed by our ids, so the row is written first, in a
    transaction of its own that ends before the provider is asked: no write lock is held
    while it answers. Every write is audited as `actor`'s.
    """
    async with db.session() as session:
        audit.mark(session, actor)
        tier = await tiers.tier_for_plan(session, data.tier_id)
        plan = Plan(**data.model_dump(exclude={"tier_id"}), tier_id=pk(tier.id))
        await repository.add(session, plan)
        invalidate_on_commit(session)
    if plan.stripe_price_id is None:
        async with db.session() as session:
            audit.mark(session, actor)
            await tiers.sync_plan_price(session, gateway, plan, tier)
            # Paid articles' paywall boxes list the plans on sale.
            invalidate_on_commit(session)
    return plan


async def update_plan(session: AsyncSession, plan_id: int, data: PlanUpdate) -> Plan:
    """Apply a partial edit; a plan's price, once set, never changes (it is what was sold),
    and a plan of an archived tier cannot go back on sale."""
    plan = await repository.plan(session, plan_id)
    if plan is None:
        raise PlanNotFound("No such plan.", code="plan_not_found")
    changes = data.model_dump(exclude_unset=True)
    price = changes.get("stripe_price_id")
    if "stripe_price_id" in changes and plan.stripe_price_id and price != plan.stripe_price_id:
        raise PriceImmutable("A plan's price cannot change; create a new plan instead.")
    if changes.get("active") and not plan.active:
        await tiers.check_plan_can_go_on_sale(session, plan)
    for name, value in changes.items():
        setattr(plan, name, value)
    await repository.save(session, plan)
    invalidate_on_commit(session)
    return plan


async def reconcile(session: AsyncSession, gateway: PaymentGateway) -> list[str]:
    """Copy every subscription the provider has into our tables; give back what changed."""
    report: list[str] = []
    async for state in gateway.list_subscriptions():
        user_id = await provider_state.owner_of_customer(session, state.customer_id, state.metadata)
        if user_id is None:
            report.append(f"{state.id}: customer {state.customer_id} unknown, skipped")
            continue
        current = await repository.subscription_by_provider_id(session, state.id)
        before = (
            (current.status, current.cancel_at_period_end, current.current_period_end)
            if current
            else None
        )
        after = await provider_state.copy_and_load(
            session, state, user_id=user_id, provider=gateway.name, event_id=None
        )
        if before != (after.status, after.cancel_at_period_end, after.current_period_end):
            was = before[0] if before else "missing"
            report.append(f"{state.id}: {was} -> {after.status} (user {user_id})")
    return report
