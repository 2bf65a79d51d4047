"""Stats by tier over the table of members: who has each tier, who pays for it, its MRR."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from tests.admin.tierkit import make_tier_table
from tests.factories import Factory


async def test_members_and_mrr_per_tier_from_the_table_of_members(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    await make_tier_table(app)
    answer = await client.get("/api/v1/admin/stats", headers=admin.headers)
    assert answer.status_code == 200, answer.text
    per_tier = {t["tier"]: t for t in answer.json()["tiers"]}
    assert list(per_tier) == ["paid", "standard", "supporter", "old"]
    # The comp of every tier counts as a comped member of each tier, with no MRR.
    assert {slug: (t["members"], t["paying"], t["comped"]) for slug, t in per_tier.items()} == {
        "paid": (1, 0, 1),
        # active, past due in grace, renewal in grace, two; and the comp of every tier
        "standard": (5, 4, 1),
        # the trial pays for it; two and comp_supporter by their comp, and comp_all
        "supporter": (4, 1, 3),
        "old": (2, 1, 1),
    }
    # Monthly, in cents: three subscriptions at 800 and one at 1000 (past due in grace
    # included); the trial of supporter is no revenue yet; the archived tier keeps its own.
    assert {slug: t["mrr"] for slug, t in per_tier.items()} == {
        "paid": {},
        "standard": {"usd": 3400.0},
        "supporter": {},
        "old": {"eur": 500.0},
    }
    assert per_tier["old"]["active"] is False
