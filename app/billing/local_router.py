"""The local gateway's pages: a checkout to confirm and a portal to cancel or resume.

Confirming posts a synthetic event through the same webhook path a Stripe event takes (see
local_checkout.py). Every page and form is checked against what the gateway issued (see
local_gateway.py): a link without its signature is 404, a form without the page's token 403
`csrf_failed`.
"""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import quote

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.billing import local_checkout
from app.billing.local_gateway import LocalGateway, Page
from app.core.deps import DatabaseDep, ReadSessionDep, SettingsDep
from app.core.errors import NotFound
from app.core.routing import api_router

router = api_router(prefix="/billing/local", include_in_schema=False)

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:system-ui;max-width:32rem;margin:4rem auto}}</style></head>
<body><h1>{title}</h1><p><em>Local test gateway: no money moves.</em></p>{body}</body></html>"""


# Both are hex HMACs; a missing one is "" and matches nothing.
Signature = Annotated[str, Query(alias="sig", max_length=128)]
FormToken = Annotated[str, Form(max_length=128)]


def _gateway(request: Request) -> LocalGateway:
    gateway = request.app.state.gateway
    if not isinstance(gateway, LocalGateway):
        raise NotFound("The local gateway is not in use.")
    return gateway


def _issued(request: Request, page: Page, value: str, signature: str) -> LocalGateway:
    """Give back the gateway if it issued this link; a guessed or altered one is no page."""
    gateway = _gateway(request)
    if not gateway.link_is_ours(page, value, signature):
        raise NotFound("No such page.")
    return gateway


def _form(action: str, token: str, label: str) -> str:
    return (
        f'<form method="post" action="{escape(action, quote=True)}">'
        f'<input type="hidden" name="token" value="{escape(token, quote=True)}">'
        f'<button type="submit">{escape(label)}</button></form>'
    )


def _page(title: str, body: str) -> HTMLResponse:
    # The page holds its form's token: never kept by a browser cache or a proxy.
    return HTMLResponse(PAGE.format(title=title, body=body), headers={"Cache-Control": "no-store"})


@router.get("/checkout/{session_id}", response_class=HTMLResponse)
async def checkout_page(
    session_id: str, request: Request, read: ReadSessionDep, sig: Signature = ""
) -> HTMLResponse:
    gateway = _issued(request, "checkout", session_id, sig)
    pending = await local_checkout.pending_checkout(read, gateway, session_id)
    plan = pending.plan
    name = escape(plan.name) if plan else "Subscription"
    price = f"{plan.amount / 100:.2f} {plan.currency.upper()} / {plan.interval}" if plan else ""
    action = gateway.page_path("checkout", session_id)
    body = (
        f"<p>{name}: {escape(price)}</p>"
        + _form(action, gateway.form_token("checkout", session_id), "Confirm test payment")
        + f'<p><a href="{escape(pending.session["cancel_url"], quote=True)}">Cancel</a></p>'
    )
    return _page("Checkout", body)


@router.post("/checkout/{session_id}")
async def confirm_checkout(
    session_id: str,
    request: Request,
    read: ReadSessionDep,
    db: DatabaseDep,
    settings: SettingsDep,
    sig: Signature = "",
    token: FormToken = "",
) -> RedirectResponse:
    gateway = _issued(request, "checkout", session_id, sig)
    success_url = await local_checkout.confirm_checkout(
        read, db, gateway, settings, session_id, form_token=token
    )
    return RedirectResponse(success_url, status_code=303)


@router.get("/portal/{customer_id}", response_class=HTMLResponse)
async def portal_page(customer_id: str, request: Request, sig: Signature = "") -> HTMLResponse:
    gateway = _issued(request, "portal", customer_id, sig)
    token = gateway.form_token("portal", customer_id)
    rows = []
    for sub in await gateway.subscriptions_of(customer_id):
        action = "resume" if sub.cancel_at_period_end else "cancel"
        target = f"/billing/local/portal/{quote(customer_id, safe='')}/{quote(sub.id, safe='')}"
        rows.append(
            f"<li>{escape(sub.id)}: {escape(sub.status)}"
            f"{' (ends at period end)' if sub.cancel_at_period_end else ''}"
            + _form(f"{target}/{action}?sig={sig}", token, action.title())
            + "</li>"
        )
    return _page("Billing portal", f"<ul>{''.join(rows)}</ul>")


@router.post("/portal/{customer_id}/{subscription_id}/{action}")
async def portal_action(
    customer_id: str,
    subscription_id: str,
    action: str,
    request: Request,
    db: DatabaseDep,
    settings: SettingsDep,
    sig: Signature = "",
    token: FormToken = "",
) -> RedirectResponse:
    gateway = _issued(request, "portal", customer_id, sig)
    await local_checkout.change_renewal(
        db, gateway, settings, customer_id, subscription_id, action=action, form_token=token
    )
    return RedirectResponse(gateway.page_path("portal", customer_id), status_code=303)
