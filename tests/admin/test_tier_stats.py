"""Stats by tier: over the table of members, who has each tier, who pays for it, its MRR;
over a history of plan changes, the upgrades and downgrades between tiers per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role, User
from app.billing.models import Plan, Subscription, SubscriptionChange, Tier
from app.core.db import pk
from tests.admin.tierkit import make_tier_table
from tests.factories import Factory

D1 = datetime(2026, 5, 1, 9, tzinfo=UTC)
D2, D3 = D1 + timedelta(days=1), D1 + timedelta(days=2)


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
        # active, past due in grace, renewal in grace, two, kept, kept_over; and comp_all
        "standard": (7, 6, 1),
        # the trial and kept (until its period ends) pay for it; two and comp_supporter by
        # their comp, and comp_all
        "supporter": (5, 2, 3),
        "old": (2, 1, 1),
    }
    # Monthly, in cents: five subscriptions at 800 and one at 1000 (past due in grace
    # included); the trial of supporter is no revenue yet, and a kept plan is paid already
    # (its subscription's price is the standard one now); the archived tier keeps its own.
    assert {slug: t["mrr"] for slug, t in per_tier.items()} == {
        "paid": {},
        "standard": {"usd": 5000.0},
        "supporter": {},
        "old": {"eur": 500.0},
    }
    assert per_tier["old"]["active"] is False


async def test_tier_changes_per_day_are_upgrades_or_downgrades_by_monthly_price(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    async with app.state.db.session() as session:
        tiers = {
            slug: Tier(name=slug.title(), slug=slug)
            for slug in ("standard", "supporter", "euro", "sideways")
        }
        user = User(email="mover@tiers.example")
        session.add_all([*tiers.values(), user])
        await session.flush()
        plans = {
            "standard_month": Plan(tier_id=pk(tiers["standard"].id), name="S", amount=800),
            "standard_year": Plan(
                tier_id=pk(tiers["standard"].id), name="SY", amount=8000, interval="year"
            ),
            "supporter_month": Plan(tier_id=pk(tiers["supporter"].id), name="P", amount=1500),
            "euro_month": Plan(tier_id=pk(tiers["euro"].id), name="E", amount=900, currency="eur"),
            "sideways_month": Plan(tier_id=pk(tiers["sideways"].id), name="W", amount=800),
        }
        session.add_all(plans.values())
        sub = Subscription(
            user_id=pk(user.id), provider_subscription_id="sub_mover", customer_id="cus_mover",
            status="active",
        )  # fmt: skip
        session.add(sub)
        await session.flush()

        def move(
            at: datetime, old: str | None, new: str, *, plan_gone: bool = False
        ) -> SubscriptionChange:
            before = plans[old] if old else None
            return SubscriptionChange(
                subscription_id=pk(sub.id),
                user_id=pk(user.id),
                from_status="active" if before else None,
                to_status="active",
                from_plan_id=(999_999 if plan_gone else before.id) if before else None,
                from_tier_id=before.tier_id if before else None,
                to_plan_id=plans[new].id,
                to_tier_id=plans[new].tier_id,
                occurred_at=at,
            )

        session.add_all(
            [
                move(D1, "standard_month", "supporter_month"),  # 8.00 -> 15.00 a month: up
                move(D2, "supporter_month", "standard_year"),  # 15.00 -> 6.67 a month: down
                move(D2, "standard_month", "standard_year"),  # the same tier: no tier change
                move(D2, None, "standard_month"),  # a new subscription: no tier change
                move(D2, "standard_month", "euro_month"),  # another currency: neither
                move(D3, "standard_month", "sideways_month"),  # the same price: neither
                move(D3, "standard_month", "supporter_month", plan_gone=True),  # unknown: neither
            ]
        )
    answer = await client.get(
        "/api/v1/admin/stats?from=2026-05-01&to=2026-05-03", headers=admin.headers
    )
    assert answer.status_code == 200, answer.text
    moves = [(d["upgrades"], d["downgrades"], d["tier_changes"]) for d in answer.json()["daily"]]
    assert moves == [(1, 0, 1), (0, 1, 2), (0, 0, 2)]
