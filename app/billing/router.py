"""HTTP for readers: plans, checkout, portal, the reader's subscription, and the webhook."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Header, Request, Response
from fastapi.responses import JSONResponse

from app.accounts.deps import CurrentUser
from app.billing import service, webhooks
from app.billing.entitlements import user_reader_level
from app.billing.errors import WebhookDisabled, WebhookFailed
from app.billing.gateway import PaymentGateway
from app.billing.models import Plan
from app.billing.schemas import (
    CheckoutIn,
    CheckoutOut,
    MySubscription,
    PlanOut,
    PortalIn,
    PortalOut,
)
from app.core.config import API_PREFIX
from app.core.db import pk
from app.core.deps import DatabaseDep, ReadSessionDep, SessionDep, SettingsDep
from app.core.errors import PayloadTooLarge
from app.core.openapi import errors
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/billing", tags=["billing"])
me_router = api_router(prefix=f"{API_PREFIX}/me/subscription", tags=["me"])
webhook_router = api_router(prefix=f"{API_PREFIX}/webhooks", tags=["billing"])


def gateway_of(request: Request) -> PaymentGateway:
    gateway: PaymentGateway = request.app.state.gateway
    return gateway


def plan_out(plan: Plan) -> PlanOut:
    return PlanOut.model_validate(plan, from_attributes=True)


@router.get("/plans", response_model=list[PlanOut])
async def plans(session: SessionDep) -> list[PlanOut]:
    """The plans on sale, in display order."""
    return [plan_out(p) for p in await service.active_plans(session)]


@router.post(
    "/checkout",
    response_model=CheckoutOut,
    responses={
        **errors(404),
        409: {"description": "Already subscribed"},
        429: {"description": "Too many new checkouts"},
    },
)
async def checkout(
    body: CheckoutIn,
    request: Request,
    user: CurrentUser,
    read: ReadSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> CheckoutOut:
    """Start a Stripe Checkout for a plan; a double click, or the same Idempotency-Key with
    the same body, gives the same session. 429 when the reader opened too many sessions."""
    started = await service.start_checkout(
        read,
        session,
        gateway_of(request),
        settings,
        user,
        plan_id=body.plan_id,
        success_url=body.success_url,
        cancel_url=body.cancel_url,
        article_slug=body.article_slug,
        idempotency_key=idempotency_key,
        limiter=request.app.state.limiter,
    )
    return CheckoutOut(checkout_url=started.url)


@router.post("/portal", response_model=PortalOut, responses=errors(404))
async def portal(
    request: Request,
    user: CurrentUser,
    read: ReadSessionDep,
    settings: SettingsDep,
    body: PortalIn | None = None,
) -> PortalOut:
    """A Billing Portal link for plan changes, card updates and cancellation."""
    url = await service.portal_url(
        read, gateway_of(request), settings, user, body.return_url if body else None
    )
    return PortalOut(portal_url=url)


async def my_subscription(
    session: SessionDep, settings: SettingsDep, user: CurrentUser
) -> MySubscription:
    user_id = pk(user.id)
    level = await user_reader_level(session, user, grace_days=settings.billing_grace_days)
    subs = await service.subscriptions_of(session, user_id)
    live = await service.entitling_subscription(session, user_id, settings)
    sub = live or (subs[0] if subs else None)
    plan = await session.get(Plan, sub.plan_id) if sub and sub.plan_id else None
    comp = await service.active_comp(session, user_id)
    grace_end = None
    if sub is not None and sub.status == "past_due" and sub.past_due_since:
        grace_end = sub.past_due_since + timedelta(days=settings.billing_grace_days)
    ending = sub is not None and (sub.cancel_at_period_end or sub.status == "canceled")
    return MySubscription(
        access_level=level.label,
        status=sub.status if sub else None,
        plan=plan_out(plan) if plan else None,
        cancel_at_period_end=bool(sub and sub.cancel_at_period_end),
        renews_at=sub.current_period_end if sub and not ending else None,
        ends_at=(sub.current_period_end if sub and sub.cancel_at_period_end else None)
        or (sub.canceled_at if sub and sub.status == "canceled" else None),
        in_grace_period=grace_end is not None,
        grace_ends_at=grace_end,
        complimentary=comp is not None,
        complimentary_until=comp.ends_at if comp else None,
    )


@me_router.get("", response_model=MySubscription)
async def get_my_subscription(
    response: Response, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> MySubscription:
    """Plan, status, renewal or end date, and grace state of the signed-in reader."""
    response.headers["Cache-Control"] = "private, no-store"
    return await my_subscription(session, settings, user)


@me_router.post("/cancel", response_model=MySubscription, responses=errors(404))
async def cancel(
    request: Request,
    user: CurrentUser,
    read: ReadSessionDep,
    session: SessionDep,
    settings: SettingsDep,
) -> MySubscription:
    """Cancel at the end of the paid period; access continues until then."""
    await service.set_cancel_at_period_end(read, session, gateway_of(request), settings, user, True)
    return await my_subscription(session, settings, user)


@me_router.post("/resume", response_model=MySubscription, responses=errors(404))
async def resume(
    request: Request,
    user: CurrentUser,
    read: ReadSessionDep,
    session: SessionDep,
    settings: SettingsDep,
) -> MySubscription:
    """Undo a cancellation before the period ends."""
    await service.set_cancel_at_period_end(
        read, session, gateway_of(request), settings, user, False
    )
    return await my_subscription(session, settings, user)


@webhook_router.post("/stripe", responses=errors(400, 401, 404, 413, 500))
async def stripe_webhook(
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    """Stripe events: verified, stored, applied once. 400 bad signature, 5xx to ask for a retry."""
    secrets = [s.strip() for s in settings.stripe_webhook_secret.split(",") if s.strip()]
    if not secrets:
        raise WebhookDisabled("Not found")
    payload = bytearray()
    async for chunk in request.stream():
        payload += chunk
        if len(payload) > webhooks.MAX_BODY_BYTES:
            raise PayloadTooLarge("Webhook bodies are limited to 1 MB.")
    event = webhooks.verify(bytes(payload), stripe_signature, secrets)
    try:
        status = await webhooks.process(
            db, request.app.state.db.reads, gateway_of(request), settings, event
        )
    except Exception as exc:
        raise WebhookFailed("The event could not be applied; it will be retried.") from exc
    return JSONResponse({"received": True, "status": status})
