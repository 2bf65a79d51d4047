"""The local gateway's pages: a checkout to confirm and a portal to cancel or resume.

Confirming posts a synthetic event through the same webhook processing a Stripe event takes.
"""

from __future__ import annotations

import secrets
import time
from html import escape
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.billing import webhooks
from app.billing.local_gateway import LocalGateway
from app.billing.models import Plan
from app.core.deps import DatabaseDep, SettingsDep
from app.core.errors import NotFound
from app.core.routing import api_router

router = api_router(prefix="/billing/local", include_in_schema=False)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui;max-width:32rem;margin:4rem auto}}</style></head>
<body><h1>{title}</h1><p><em>Local test gateway: no money moves.</em></p>{body}</body></html>"""


def _gateway(request: Request) -> LocalGateway:
    gateway = request.app.state.gateway
    if not isinstance(gateway, LocalGateway):
        raise NotFound("The local gateway is not in use.")
    return gateway


def _event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_local_{secrets.token_hex(10)}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": obj},
    }


@router.get("/checkout/{session_id}", response_class=HTMLResponse)
async def checkout_page(session_id: str, request: Request, db: DatabaseDep) -> HTMLResponse:
    checkout = await _gateway(request).session(session_id)
    if checkout is None:
        raise NotFound("No such checkout.")
    async with db.session(write=False) as session:
        plan = await session.get(Plan, checkout["plan_id"])
    name = escape(plan.name) if plan else "Subscription"
    price = f"{plan.amount / 100:.2f} {plan.currency.upper()} / {plan.interval}" if plan else ""
    body = (
        f"<p>{name}: {escape(price)}</p>"
        f'<form method="post"><button type="submit">Confirm test payment</button></form>'
        f'<p><a href="{escape(checkout["cancel_url"], quote=True)}">Cancel</a></p>'
    )
    return HTMLResponse(PAGE.format(title="Checkout", body=body))


@router.post("/checkout/{session_id}")
async def confirm_checkout(
    session_id: str, request: Request, db: DatabaseDep, settings: SettingsDep
) -> RedirectResponse:
    gateway = _gateway(request)
    checkout = await gateway.session(session_id)
    if checkout is None:
        raise NotFound("No such checkout.")
    async with db.session(write=False) as session:
        plan = await session.get(Plan, checkout["plan_id"])
    if plan is None:
        raise NotFound("The plan is gone.")
    obj = await gateway.complete_checkout(
        session_id, amount=plan.amount, currency=plan.currency, interval=plan.interval
    )
    await webhooks.process(
        db, request.app.state.reads, gateway, settings, _event("checkout.session.completed", obj)
    )
    return RedirectResponse(checkout["success_url"], status_code=303)


@router.get("/portal/{customer_id}", response_class=HTMLResponse)
async def portal_page(customer_id: str, request: Request) -> HTMLResponse:
    subs = await _gateway(request).subscriptions_of(customer_id)
    rows = []
    for sub in subs:
        action = "resume" if sub.cancel_at_period_end else "cancel"
        rows.append(
            f"<li>{escape(sub.id)}: {escape(sub.status)}"
            f"{' (ends at period end)' if sub.cancel_at_period_end else ''}"
            f'<form method="post" '
            f'action="/billing/local/portal/{escape(customer_id)}/{escape(sub.id)}/{action}">'
            f"<button>{action.title()}</button></form></li>"
        )
    return HTMLResponse(PAGE.format(title="Billing portal", body=f"<ul>{''.join(rows)}</ul>"))


@router.post("/portal/{customer_id}/{subscription_id}/{action}")
async def portal_action(
    customer_id: str,
    subscription_id: str,
    action: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
) -> RedirectResponse:
    gateway = _gateway(request)
    if action not in {"cancel", "resume"}:
        raise NotFound("Unknown action.")
    state = await gateway.fetch_subscription(subscription_id)
    if state is None or state.customer_id != customer_id:
        raise NotFound("No such subscription.")
    await gateway.set_cancel_at_period_end(subscription_id, action == "cancel")
    event = _event(
        "customer.subscription.updated", {"id": subscription_id, "object": "subscription"}
    )
    await webhooks.process(db, request.app.state.reads, gateway, settings, event)
    return RedirectResponse(f"/billing/local/portal/{customer_id}", status_code=303)
