"""A staff replay of a Stripe event writes under the admin's name; Stripe's own deliveries
stay out of the staff log."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from tests.billing import conftest as billing_setup
from tests.billing.conftest import Billing
from tests.factories import Factory, Member
from tests.stripe_standin import StandIn, event

# The billing tests' fixtures: the real StripeGateway against the Stripe stand-in.
settings = billing_setup.settings
standin = billing_setup.standin
billing = billing_setup.billing


async def _entries(client: AsyncClient, admin: Member, entity: str) -> list[dict[str, Any]]:
    answer = await client.get(
        f"/api/v1/admin/audit?entity={entity}&limit=100", headers=admin.headers
    )
    assert answer.status_code == 200
    return list(answer.json()["items"])


async def test_a_replay_is_audited_as_the_admin_who_ran_it(
    billing: Billing, factory: Factory, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.pay(member, plan)
    standin.faults.fail_subscription_fetches = 5
    assert (await billing.deliver(event("checkout.session.completed", paid))).status_code == 500
    standin.faults.fail_subscription_fetches = 0
    admin = await billing.admin()
    # Stripe's failed delivery wrote the event's failure with no staff member behind it.
    assert await _entries(client, admin, "stripe_event") == []
    [failed] = (
        await client.get("/api/v1/admin/billing/events?status=failed", headers=admin.headers)
    ).json()["items"]
    replayed = await client.post(
        f"/api/v1/admin/billing/events/{failed['id']}/replay", headers=admin.headers
    )
    assert replayed.status_code == 200 and replayed.json()["status"] == "processed"
    request_id = replayed.headers["X-Request-ID"]

    [granted] = await _entries(client, admin, "subscription")
    assert (granted["action"], granted["actor_id"]) == ("create", admin.id)
    assert granted["after"]["status"] == "active"
    assert granted["after"]["user_id"] == member.id
    assert granted["entity_id"] == str(granted["after"]["id"])
    [done] = await _entries(client, admin, "stripe_event")
    assert (done["action"], done["actor_id"]) == ("update", admin.id)
    assert done["entity_id"] == failed["event_id"]
    assert done["after"]["status"] == "processed"
    assert granted["request_id"] == done["request_id"] == request_id
    # The customer link made at checkout is not written again, so it has no entry.
    assert await _entries(client, admin, "billing_customer") == []


async def test_ordinary_deliveries_write_no_staff_entries(
    billing: Billing, factory: Factory, client: AsyncClient
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    await billing.subscribe(member, plan)
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["access_level"] == "paid"
    admin = await billing.admin()
    for entity in ("subscription", "stripe_event", "billing_customer", "payment"):
        assert await _entries(client, admin, entity) == []
