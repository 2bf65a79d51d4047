"""The local gateway's checkout and portal: what their pages show and what their forms do.

A confirmed checkout, or a subscription cancelled or resumed in the portal, makes the event
Stripe would send, signed by the local gateway, and it goes the way a Stripe delivery goes:
`parse_webhook`, then the event ledger and its handlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing import events, repository
from app.billing.errors import FormNotFromPage
from app.billing.local_gateway import LocalGateway, Page
from app.billing.models import Plan
from app.core.config import Settings
from app.core.db import Database
from app.core.errors import NotFound


@dataclass(frozen=True)
class Checkout:
    """A pending local checkout and the plan it sells (None: the plan is gone)."""

    session: dict[str, Any]
    plan: Plan | None


async def pending_checkout(read: AsyncSession, gateway: LocalGateway, session_id: str) -> Checkout:
    """Give back a pending checkout of the local gateway; NotFound for one it never made."""
    found = await gateway.session(session_id)
    if found is None:
        raise NotFound("No such checkout.")
    return Checkout(found, await repository.plan(read, found["plan_id"]))


def _form_from_page(gateway: LocalGateway, page: Page, value: str, token: str) -> None:
    if not gateway.form_is_ours(page, value, token):
        raise FormNotFromPage("Submit the form on the page itself.")


async def confirm_checkout(
    read: AsyncSession,
    db: Database,
    gateway: LocalGateway,
    settings: Settings,
    session_id: str,
    *,
    form_token: str,
) -> str:
    """Pay a pending checkout (its form's token must be the page's) and apply the event that
    says so; give back where the reader goes next."""
    pending = await pending_checkout(read, gateway, session_id)
    _form_from_page(gateway, "checkout", session_id, form_token)
    if pending.plan is None:
        raise NotFound("The plan is gone.")
    obj = await gateway.complete_checkout(
        session_id,
        amount=pending.plan.amount,
        currency=pending.plan.currency,
        interval=pending.plan.interval,
    )
    await _deliver(db, gateway, settings, "checkout.session.completed", obj)
    return str(pending.session["success_url"])


async def change_renewal(
    db: Database,
    gateway: LocalGateway,
    settings: Settings,
    customer_id: str,
    subscription_id: str,
    *,
    action: str,
    form_token: str,
) -> None:
    """Cancel at period end (`cancel`) or resume (`resume`) a customer's subscription from
    the portal (its form's token must be the page's), and apply the event that says so."""
    if action not in {"cancel", "resume"}:
        raise NotFound("Unknown action.")
    state = await gateway.fetch_subscription(subscription_id)
    if state is None or state.customer_id != customer_id:
        raise NotFound("No such subscription.")
    _form_from_page(gateway, "portal", customer_id, form_token)
    await gateway.set_cancel_at_period_end(subscription_id, action == "cancel")
    obj = {"id": subscription_id, "object": "subscription"}
    await _deliver(db, gateway, settings, "customer.subscription.updated", obj)


async def _deliver(
    db: Database, gateway: LocalGateway, settings: Settings, kind: str, obj: dict[str, Any]
) -> None:
    body, signature = gateway.signed_event(kind, obj)
    await events.receive(db, gateway, settings, gateway.parse_webhook(body, signature))
