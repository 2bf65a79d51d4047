"""Billing rules: plans, checkout, portal, cancel and resume, comps, the reader's subscription."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.levels import ENTITLING, SubscriptionFacts, subscription_entitles
from app.accounts.models import User
from app.billing import sync
from app.billing.errors import (
    AlreadySubscribed,
    NoSubscription,
    PaymentProviderUnavailable,
    PlanNotFound,
    PriceImmutable,
    RedirectNotAllowed,
)
from app.billing.gateway import CheckoutRequest, GatewayError, PaymentGateway, SubscriptionState
from app.billing.models import (
    BillingCustomer,
    CheckoutRecord,
    CompGrant,
    Plan,
    StripeEvent,
    Subscription,
)
from app.billing.schemas import PlanCreate, PlanUpdate
from app.core.cache import invalidate_on_commit
from app.core.config import Settings
from app.core.db import insert_ignoring_duplicates, pk, utcnow
from app.core.ratelimit import RateLimiter

CHECKOUT_WINDOW = timedelta(minutes=30)


async def active_plans(session: AsyncSession) -> Sequence[Plan]:
    rows = await session.exec(
        select(Plan).where(Plan.active == True).order_by(col(Plan.sort_order), col(Plan.id))  # noqa: E712
    )
    return rows.all()


def _facts(sub: Subscription) -> SubscriptionFacts:
    return SubscriptionFacts(
        sub.status, sub.current_period_end, sub.cancel_at_period_end, sub.past_due_since
    )


async def subscriptions_of(session: AsyncSession, user_id: int) -> Sequence[Subscription]:
    rows = await session.exec(
        select(Subscription)
        .where(Subscription.user_id == user_id)
        .order_by(col(Subscription.updated_at).desc())
    )
    return rows.all()


async def entitling_subscription(
    session: AsyncSession, user_id: int, settings: Settings
) -> Subscription | None:
    """Give back the reader's subscription that currently gives access, if any."""
    grace = timedelta(days=settings.billing_grace_days)
    now = utcnow()
    for sub in await subscriptions_of(session, user_id):
        if subscription_entitles(_facts(sub), now, grace):
            return sub
    return None


def check_redirect(url: str | None, settings: Settings, default_path: str) -> str:
    """Give back a redirect URL on an allowed frontend origin (or the default on the site)."""
    if url is None:
        return f"{settings.public_url}{default_path}"
    allowed = {_origin(o) for o in [settings.public_url, *settings.cors_origins]}
    if _origin(url) not in allowed:
        raise RedirectNotAllowed("Redirects must go to the publication's own site.")
    return url


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


async def customer_for(read: AsyncSession, gateway: PaymentGateway, user: User) -> tuple[str, bool]:
    """Give back the reader's provider customer and whether it is new (to be linked)."""
    user_id = pk(user.id)
    link = await read.get(BillingCustomer, user_id)
    if link is not None:
        return link.customer_id, False
    try:
        return await gateway.ensure_customer(user_id=user_id, email=user.email), True
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc


@dataclass(frozen=True)
class CheckoutStart:
    url: str
    session_id: str


async def start_checkout(
    read: AsyncSession,
    session: AsyncSession,
    gateway: PaymentGateway,
    settings: Settings,
    user: User,
    *,
    plan_id: int,
    success_url: str | None,
    cancel_url: str | None,
    article_slug: str | None,
    idempotency_key: str | None,
    limiter: RateLimiter,
) -> CheckoutStart:
    """Open a checkout for a plan; a repeated request (same key and parameters, or a double
    click) reuses it. New provider sessions per reader are limited (`checkout_rate_limit`).

    Everything is read, and the provider asked, before the write session's first statement:
    no write lock is held while Stripe answers.
    """
    user_id = pk(user.id)
    plan = await read.get(Plan, plan_id)
    if plan is None or not plan.active or not plan.stripe_price_id:
        raise PlanNotFound("No such plan on sale.")
    if await entitling_subscription(read, user_id, settings) is not None:
        raise AlreadySubscribed(
            "You already have a subscription; manage it in the billing portal.",
            extra={"portal": "/api/v1/billing/portal"},
        )
    success = check_redirect(success_url, settings, "/account/billing?checkout=success")
    cancel = check_redirect(cancel_url, settings, "/account/billing?checkout=cancel")
    key = _checkout_key(
        user_id,
        idempotency_key,
        [plan_id, plan.stripe_price_id, plan.trial_days, success, cancel, article_slug],
    )
    existing = (
        await read.exec(select(CheckoutRecord).where(CheckoutRecord.idempotency_key == key))
    ).first()
    if existing is not None and existing.url and existing.session_id:
        return CheckoutStart(existing.url, existing.session_id)
    # Only what opens a session at the provider counts: a repeat answered from our record
    # costs the provider nothing, and still works for a reader over the limit.
    await limiter.hit(settings.checkout_rate_limit, f"checkout:user:{user_id}")
    customer_id, new_customer = await customer_for(read, gateway, user)
    try:
        checkout = await gateway.create_checkout(
            CheckoutRequest(
                customer_id=customer_id,
                price_id=plan.stripe_price_id,
                trial_days=plan.trial_days,
                success_url=success,
                cancel_url=cancel,
                user_id=user_id,
                plan_id=plan_id,
                article_slug=article_slug,
                idempotency_key=key,
            )
        )
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    if new_customer:
        await sync.link_customer(session, user_id=user_id, customer_id=customer_id)
    await session.exec(
        insert_ignoring_duplicates(CheckoutRecord).values(
            user_id=user_id,
            plan_id=plan_id,
            idempotency_key=key,
            session_id=checkout.id,
            url=checkout.url,
            article_slug=article_slug,
            created_at=utcnow(),
        )
    )
    return CheckoutStart(checkout.url, checkout.id)


def _checkout_key(user_id: int, client_key: str | None, parameters: list[object]) -> str:
    # Everything the session is made of is in the key, so one key never stands for two
    # checkouts: the same key with another plan, URL or article is another session (and
    # Stripe, which refuses a key reused with other parameters, never sees one).
    made_of = json.dumps(parameters, separators=(",", ":")).encode()
    if client_key:
        digest = hashlib.sha256(json.dumps(client_key).encode() + b"\n" + made_of).hexdigest()
        return f"broadsheet-checkout-{user_id}-{digest[:32]}"
    # Without a client key, requests in the same half-hour window share one key, so a double
    # click (or a retry of ours) opens a single session at the provider.
    window = int(utcnow().timestamp() // CHECKOUT_WINDOW.total_seconds())
    digest = hashlib.sha256(made_of).hexdigest()[:16]
    return f"broadsheet-checkout-{user_id}-{parameters[0]}-{window}-{digest}"


async def portal_url(
    read: AsyncSession,
    gateway: PaymentGateway,
    settings: Settings,
    user: User,
    return_url: str | None,
) -> str:
    """A billing-portal link for the reader's customer (nothing is written)."""
    link = await read.get(BillingCustomer, pk(user.id))
    if link is None:
        raise NoSubscription("There is no billing account yet; subscribe first.")
    target = check_redirect(return_url, settings, "/account/billing")
    try:
        return await gateway.create_portal(customer_id=link.customer_id, return_url=target)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc


async def set_cancel_at_period_end(
    read: AsyncSession,
    session: AsyncSession,
    gateway: PaymentGateway,
    settings: Settings,
    user: User,
    cancel: bool,
) -> Subscription:
    """Cancel at period end (or resume) the reader's subscription, at the provider and here
    (the provider first, outside any write transaction)."""
    user_id = pk(user.id)
    sub = await entitling_subscription(read, user_id, settings)
    if sub is None or sub.status not in ENTITLING | {"past_due"}:
        raise NoSubscription("There is no active subscription to change.")
    try:
        state = await gateway.set_cancel_at_period_end(sub.provider_subscription_id, cancel)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    return await sync.apply_state(
        session, state, user_id=user_id, provider=sub.provider, event_id=None
    )


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
        for sub in await subscriptions_of(read, user_id):
            if sub.status not in {"canceled", "incomplete_expired"}:
                states.append(
                    (sub.provider, await gateway.cancel_now(sub.provider_subscription_id))
                )
        link = await read.get(BillingCustomer, user_id)
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
        await sync.apply_state(session, state, user_id=user_id, provider=provider, event_id=None)
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
    rows = (
        await session.exec(select(StripeEvent).where(StripeEvent.customer_id == customer_id))
    ).all()
    for row in rows:
        row.payload = json.dumps(_redacted(json.loads(row.payload)))
        session.add(row)


async def grant_comp(
    session: AsyncSession, admin: User, member: User, *, ends_at: datetime | None, reason: str
) -> CompGrant:
    grant = CompGrant(user_id=pk(member.id), granted_by_id=admin.id, ends_at=ends_at, reason=reason)
    session.add(grant)
    await session.flush()
    return grant


async def revoke_comps(session: AsyncSession, member: User) -> int:
    grants = (
        await session.exec(
            select(CompGrant).where(
                CompGrant.user_id == member.id, col(CompGrant.revoked_at).is_(None)
            )
        )
    ).all()
    now = utcnow()
    for grant in grants:
        grant.revoked_at = now
        session.add(grant)
    return len(grants)


async def active_comp(session: AsyncSession, user_id: int) -> CompGrant | None:
    now = utcnow()
    rows = await session.exec(
        select(CompGrant).where(CompGrant.user_id == user_id, col(CompGrant.revoked_at).is_(None))
    )
    for grant in rows.all():
        if grant.starts_at <= now and (grant.ends_at is None or now < grant.ends_at):
            return grant
    return None


async def create_plan(session: AsyncSession, gateway: PaymentGateway, data: PlanCreate) -> Plan:
    """Create a plan; without a price id, its product and price are made at the provider."""
    plan = Plan(**data.model_dump())
    session.add(plan)
    await session.flush()
    if plan.stripe_price_id is None:
        # The provider's product is keyed by the plan's id, so the row comes first; committed
        # before asking, so no write lock is held while the provider answers.
        await session.commit()
        await sync_plan_price(session, gateway, plan)
    # Paid articles' paywall boxes list the plans on sale.
    invalidate_on_commit(session)
    return plan


async def update_plan(session: AsyncSession, plan_id: int, data: PlanUpdate) -> Plan:
    """Apply a partial edit; a plan's price, once set, never changes (it is what was sold)."""
    plan = await session.get(Plan, plan_id)
    if plan is None:
        raise PlanNotFound("No such plan.", code="plan_not_found")
    changes = data.model_dump(exclude_unset=True)
    price = changes.get("stripe_price_id")
    if "stripe_price_id" in changes and plan.stripe_price_id and price != plan.stripe_price_id:
        raise PriceImmutable("A plan's price cannot change; create a new plan instead.")
    for name, value in changes.items():
        setattr(plan, name, value)
    session.add(plan)
    invalidate_on_commit(session)
    return plan


async def sync_plan_price(session: AsyncSession, gateway: PaymentGateway, plan: Plan) -> Plan:
    """Create the product and price of a plan at the gateway if it has none (idempotent)."""
    if plan.stripe_price_id:
        return plan
    try:
        product_id, price_id = await gateway.ensure_price(
            plan_id=pk(plan.id),
            name=plan.name,
            amount=plan.amount,
            currency=plan.currency,
            interval=plan.interval,
            product_id=plan.stripe_product_id,
        )
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    plan.stripe_product_id = product_id
    plan.stripe_price_id = price_id
    session.add(plan)
    return plan


async def reconcile(session: AsyncSession, gateway: PaymentGateway) -> list[str]:
    """Copy every subscription the provider has into our tables; give back what changed."""
    report: list[str] = []
    async for state in gateway.list_subscriptions():
        user_id = await sync.user_for_customer(session, state.customer_id, state.metadata)
        if user_id is None:
            report.append(f"{state.id}: customer {state.customer_id} unknown, skipped")
            continue
        current = (
            await session.exec(
                select(Subscription).where(Subscription.provider_subscription_id == state.id)
            )
        ).first()
        before = (
            (current.status, current.cancel_at_period_end, current.current_period_end)
            if current
            else None
        )
        after = await sync.apply_state(
            session, state, user_id=user_id, provider=gateway.name, event_id=None
        )
        if before != (after.status, after.cancel_at_period_end, after.current_period_end):
            was = before[0] if before else "missing"
            report.append(f"{state.id}: {was} -> {after.status} (user {user_id})")
    return report
