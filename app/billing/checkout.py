"""Checkout and the billing portal: a provider checkout opened once per request (a double
click or a repeated Idempotency-Key gets the same one), and a link to the portal."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.billing import repository
from app.billing.errors import (
    AlreadySubscribed,
    NoSubscription,
    PaymentProviderUnavailable,
    PlanNotFound,
    RedirectNotAllowed,
)
from app.billing.gateway import CheckoutRequest, GatewayError, PaymentGateway
from app.billing.models import Plan
from app.billing.service import entitling_subscription
from app.core.config import Settings
from app.core.db import pk, utcnow
from app.core.ratelimit import RateLimiter

CHECKOUT_WINDOW = timedelta(minutes=30)


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
    link = await repository.customer_of_user(read, user_id)
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
    plan, price_id = await _plan_for_sale(read, settings, user_id, plan_id)
    success = check_redirect(success_url, settings, "/account/billing?checkout=success")
    cancel = check_redirect(cancel_url, settings, "/account/billing?checkout=cancel")
    key = _checkout_key(
        user_id,
        idempotency_key,
        [plan_id, price_id, plan.trial_days, success, cancel, article_slug],
    )
    existing = await repository.checkout_by_key(read, key)
    if existing is not None and existing.url and existing.session_id:
        return CheckoutStart(existing.url, existing.session_id)
    # Only what opens a session at the provider counts: a repeat answered from our record
    # costs the provider nothing, and still works for a reader over the limit.
    await limiter.hit(settings.checkout_rate_limit, f"checkout:user:{user_id}")
    customer_id, new_customer = await customer_for(read, gateway, user)
    request = CheckoutRequest(
        customer_id=customer_id,
        price_id=price_id,
        trial_days=plan.trial_days,
        success_url=success,
        cancel_url=cancel,
        user_id=user_id,
        plan_id=plan_id,
        article_slug=article_slug,
        idempotency_key=key,
    )
    try:
        checkout = await gateway.create_checkout(request)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    if new_customer:
        await repository.link_customer(session, user_id=user_id, customer_id=customer_id)
    await repository.insert_checkout(session, request, checkout)
    return CheckoutStart(checkout.url, checkout.id)


async def _plan_for_sale(
    read: AsyncSession, settings: Settings, user_id: int, plan_id: int
) -> tuple[Plan, str]:
    """Give back a plan on sale and its price, for a reader who has no subscription yet."""
    plan = await repository.plan(read, plan_id)
    if plan is None or not plan.active or not plan.stripe_price_id:
        raise PlanNotFound("No such plan on sale.")
    if await entitling_subscription(read, user_id, settings) is not None:
        raise AlreadySubscribed(
            "You already have a subscription; manage it in the billing portal.",
            extra={"portal": "/api/v1/billing/portal"},
        )
    return plan, plan.stripe_price_id


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
    link = await repository.customer_of_user(read, pk(user.id))
    if link is None:
        raise NoSubscription("There is no billing account yet; subscribe first.")
    target = check_redirect(return_url, settings, "/account/billing")
    try:
        return await gateway.create_portal(customer_id=link.customer_id, return_url=target)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
