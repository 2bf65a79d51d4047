"""HTTP for readers: plans, checkout, portal, the reader's subscription, and the webhook."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Request, Response
from fastapi.responses import JSONResponse

from app.accounts.deps import CurrentUser
from app.billing import events, plan_change, service
from app.billing.checkout import portal_url, start_checkout
from app.billing.deps import GatewayDep, VerifiedEvent
from app.billing.schemas import (
    CheckoutIn,
    CheckoutOut,
    MySubscription,
    PlanChangeIn,
    PlanOut,
    PortalIn,
    PortalOut,
)
from app.core.config import API_PREFIX
from app.core.deps import DatabaseDep, ReadSessionDep, SessionDep, SettingsDep
from app.core.openapi import errors
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/billing", tags=["billing"])
me_router = api_router(prefix=f"{API_PREFIX}/me/subscription", tags=["me"])
webhook_router = api_router(prefix=f"{API_PREFIX}/webhooks", tags=["billing"])


@router.get("/plans", response_model=list[PlanOut])
async def plans(session: SessionDep) -> list[PlanOut]:
    """The plans on sale, in display order."""
    on_sale = await service.plans_on_sale(session)
    return [PlanOut.model_validate(p, from_attributes=True) for p in on_sale]


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
    gateway: GatewayDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> CheckoutOut:
    """Start a Stripe Checkout for a plan; a double click, or the same Idempotency-Key with
    the same body, gives the same session. 429 when the reader opened too many sessions."""
    started = await start_checkout(
        read,
        session,
        gateway,
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
    user: CurrentUser,
    read: ReadSessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    body: PortalIn | None = None,
) -> PortalOut:
    """A Billing Portal link for plan changes, card updates and cancellation."""
    url = await portal_url(read, gateway, settings, user, body.return_url if body else None)
    return PortalOut(portal_url=url)


@me_router.get("", response_model=MySubscription)
async def get_my_subscription(
    response: Response, user: CurrentUser, session: SessionDep, settings: SettingsDep
) -> MySubscription:
    """Plan, status, renewal or end date, and grace state of the signed-in reader."""
    response.headers["Cache-Control"] = "private, no-store"
    return await service.reader_subscription(session, settings, user)


@me_router.post("/cancel", response_model=MySubscription, responses=errors(404))
async def cancel(
    user: CurrentUser,
    read: ReadSessionDep,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> MySubscription:
    """Cancel at the end of the paid period; access continues until then."""
    return await service.change_renewal(read, session, gateway, settings, user, cancel=True)


@me_router.post("/resume", response_model=MySubscription, responses=errors(404))
async def resume(
    user: CurrentUser,
    read: ReadSessionDep,
    session: SessionDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> MySubscription:
    """Undo a cancellation before the period ends."""
    return await service.change_renewal(read, session, gateway, settings, user, cancel=False)


@me_router.post(
    "/change",
    response_model=MySubscription,
    responses={
        404: {"description": "No subscription (`no_subscription`), or no such plan on sale"
              " (`plan_not_found`)"},
        409: {"description": "On this plan already (`same_plan`), payment past due"
              " (`subscription_past_due`), subscription ended (`subscription_ended`) or"
              " ending at period end (`subscription_canceling`)"},
        422: {"description": "Invalid input, or a plan in another currency"
              " (`currency_mismatch`)"},
        503: {"description": "The payment provider or the database is unavailable"},
    },
)  # fmt: skip
async def change(
    body: PlanChangeIn,
    user: CurrentUser,
    read: ReadSessionDep,
    session: SessionDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> MySubscription:
    """Move to another plan (another tier, or the other interval). An upgrade applies now,
    prorated; a downgrade keeps the higher plan until the period ends (`kept_plan`,
    `kept_until`), then bills the lower price. The same Idempotency-Key again changes
    nothing more."""
    return await plan_change.change_plan(
        read,
        session,
        db,
        gateway,
        settings,
        user,
        plan_id=body.plan_id,
        idempotency_key=idempotency_key,
    )


@webhook_router.post("/stripe", responses=errors(400, 401, 404, 413, 500))
async def stripe_webhook(
    event: VerifiedEvent, gateway: GatewayDep, db: DatabaseDep, settings: SettingsDep
) -> JSONResponse:
    """Stripe events: verified, stored, applied once. 400 no signature or no event, 401 a
    signature that does not hold, 5xx to ask for a retry."""
    status = await events.receive(db, gateway, settings, event)
    return JSONResponse({"received": True, "status": status})
