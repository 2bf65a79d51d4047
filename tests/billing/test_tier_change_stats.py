"""Stats by tier from real plan changes: an upgrade and a downgrade through
POST /me/subscription/change against the Stripe stand-in, copied by the webhook, show in
the day's tier changes, and the member answers follow the kept plan."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from app.core.db import utcnow
from tests.billing.conftest import Billing
from tests.billing.test_subscription_change import Tiers, change, updated_at_stripe
from tests.factories import Factory


async def test_an_upgrade_then_a_downgrade_show_in_the_days_tier_changes(
    app: FastAPI, billing: Billing, client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    tiers = await Tiers(client, admin).make()
    member = await factory.member()
    standard, supporter = tiers.plans["standard-month"], tiers.plans["supporter-month"]
    paid = await billing.subscribe(member, standard)
    # Yesterday to tomorrow, so a run that crosses midnight counts the same.
    today = utcnow().date()
    span = f"from={today - timedelta(days=1)}&to={today + timedelta(days=1)}"

    async def moves() -> tuple[int, int, int]:
        stats = await client.get(f"/api/v1/admin/stats?{span}", headers=admin.headers)
        assert stats.status_code == 200, stats.text
        days = stats.json()["daily"]
        up, down, every = (
            sum(d[k] for d in days) for k in ("upgrades", "downgrades", "tier_changes")
        )
        return up, down, every

    assert await moves() == (0, 0, 0)  # a new subscription is no tier change
    assert (await change(client, member, supporter["id"])).status_code == 200
    await updated_at_stripe(billing, paid["subscription"])
    assert await moves() == (1, 0, 1)
    assert (await change(client, member, standard["id"])).status_code == 200
    await updated_at_stripe(billing, paid["subscription"])
    assert await moves() == (1, 1, 2)
    stats = await client.get(f"/api/v1/admin/stats?{span}", headers=admin.headers)
    # The downgrade waits for the period's end: supporter is kept until then.
    answer = await client.get(f"/api/v1/admin/members/{member.id}", headers=admin.headers)
    assert answer.json()["tiers"] == ["standard", "supporter"]
    per_tier = {t["tier"]: t for t in stats.json()["tiers"]}
    assert (per_tier["standard"]["paying"], per_tier["supporter"]["paying"]) == (1, 1)
    assert per_tier["standard"]["mrr"] == {"usd": 800.0}
