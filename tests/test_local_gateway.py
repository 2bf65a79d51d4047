"""The local gateway (no Stripe key): checkout page, confirmation, portal, all offline."""

from __future__ import annotations

from httpx import AsyncClient

from app.accounts.models import Role
from tests.factories import Factory


async def test_local_checkout_activates_through_the_event_path(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    plan = await client.post(
        "/api/v1/admin/plans",
        headers=admin.headers,
        json={"name": "Monthly", "amount": 500, "currency": "eur", "interval": "month"},
    )
    assert plan.status_code == 201
    assert plan.json()["stripe_price_id"].startswith("price_local_")
    member = await factory.member()
    started = await client.post(
        "/api/v1/billing/checkout", json={"plan_id": plan.json()["id"]}, headers=member.headers
    )
    url = started.json()["checkout_url"]
    assert url.startswith("http://127.0.0.1:8000/billing/local/checkout/")
    path = url.removeprefix("http://127.0.0.1:8000")
    page = await client.get(path)
    assert page.status_code == 200 and "Confirm test payment" in page.text
    confirmed = await client.post(path)
    assert confirmed.status_code == 303
    assert confirmed.headers["location"].startswith("https://reader.example/account/billing")
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["access_level"] == "paid" and mine["status"] == "active"
    events = (await client.get("/api/v1/admin/billing/events", headers=admin.headers)).json()
    assert [e["type"] for e in events["items"]] == ["checkout.session.completed"]
    canceled = await client.post("/api/v1/me/subscription/cancel", headers=member.headers)
    assert canceled.json()["cancel_at_period_end"] is True
    portal = await client.post("/api/v1/billing/portal", headers=member.headers)
    portal_path = portal.json()["portal_url"].removeprefix("http://127.0.0.1:8000")
    listing = await client.get(portal_path)
    assert "ends at period end" in listing.text


async def test_local_pages_404_for_unknown_sessions(client: AsyncClient) -> None:
    assert (await client.get("/billing/local/checkout/cs_nope")).status_code == 404
    assert (await client.post("/billing/local/checkout/cs_nope")).status_code == 404
