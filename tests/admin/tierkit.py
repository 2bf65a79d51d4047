"""A table of members holding tiers in every way there is (and ways that no longer count),
written straight to the database, for the tier filter, the member answers, the export and
the stats."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.billing.models import CompGrant, Plan, Subscription, Tier
from app.core.db import pk, utcnow

DAY = timedelta(days=1)


@dataclass
class TierTable:
    """The members by name, the tiers by slug, and what each member should hold now."""

    members: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    plans: dict[str, int] = field(default_factory=dict)
    expected: dict[str, list[str]] = field(default_factory=dict)


# Every tier in display order: the default `paid` (migration 0014; no plan of it is held
# here), standard, supporter, and the archived `old`. A comp of every tier holds them all.
ALL = ["paid", "standard", "supporter", "old"]


def _sub(
    user_id: int,
    plan_id: int | None,
    status: str,
    *,
    amount: int = 800,
    currency: str = "usd",
    interval: str = "month",
    current_period_end: datetime | None = None,
    past_due_since: datetime | None = None,
    kept_plan_id: int | None = None,
    kept_until: datetime | None = None,
) -> Subscription:
    return Subscription(
        user_id=user_id,
        provider_subscription_id=f"sub_{user_id}_{status}_{plan_id}",
        customer_id=f"cus_{user_id}",
        plan_id=plan_id,
        status=status,
        amount=amount,
        currency=currency,
        interval=interval,
        current_period_end=current_period_end or utcnow() + 20 * DAY,
        past_due_since=past_due_since,
        kept_plan_id=kept_plan_id,
        kept_until=kept_until,
    )


def _rows(t: TierTable, now: datetime) -> list[Subscription | CompGrant]:
    m, p, tier = t.members, t.plans, t.tiers
    return [
        _sub(m["active"], p["standard_month"], "active"),
        _sub(m["trial"], p["supporter_year"], "trialing", amount=12000, interval="year"),
        _sub(m["past_due_in_grace"], p["standard_month"], "past_due", past_due_since=now - 2 * DAY),
        _sub(
            m["past_due_out_of_grace"],
            p["standard_month"],
            "past_due",
            past_due_since=now - 30 * DAY,
        ),
        _sub(m["canceled"], p["supporter_year"], "canceled"),
        _sub(m["stale_active"], p["standard_month"], "active", current_period_end=now - 30 * DAY),
        _sub(m["renewal_in_grace"], p["standard_month"], "active", current_period_end=now - DAY),
        _sub(m["two"], p["standard_month"], "active", amount=1000),
        _sub(m["archived"], p["old_month"], "active", amount=500, currency="eur"),
        _sub(m["planless"], None, "active"),
        # Downgraded from supporter at period end: supporter is kept until then, not after.
        _sub(
            m["kept"],
            p["standard_month"],
            "active",
            kept_plan_id=p["supporter_year"],
            kept_until=now + 5 * DAY,
        ),
        _sub(
            m["kept_over"],
            p["standard_month"],
            "active",
            kept_plan_id=p["supporter_year"],
            kept_until=now - DAY,
        ),
        CompGrant(user_id=m["comp_all"], reason="press"),
        CompGrant(user_id=m["comp_supporter"], reason="friend", tier_id=tier["supporter"]),
        CompGrant(user_id=m["two"], reason="friend", tier_id=tier["supporter"]),
        CompGrant(
            user_id=m["comp_expired"],
            reason="old",
            tier_id=tier["supporter"],
            starts_at=now - 10 * DAY,
            ends_at=now - DAY,
        ),
        CompGrant(user_id=m["comp_revoked"], reason="gone", revoked_at=now - DAY),
        CompGrant(user_id=m["comp_later"], reason="later", starts_at=now + DAY),
    ]


EXPECTED = {
    "active": ["standard"],
    "trial": ["supporter"],
    "past_due_in_grace": ["standard"],
    "past_due_out_of_grace": [],
    "canceled": [],
    "stale_active": [],
    "renewal_in_grace": ["standard"],
    "two": ["standard", "supporter"],
    "archived": ["old"],
    # An entitling subscription whose plan is gone: paid access, but in no tier.
    "planless": [],
    "kept": ["standard", "supporter"],
    "kept_over": ["standard"],
    "comp_all": ALL,
    "comp_supporter": ["supporter"],
    "comp_expired": [],
    "comp_revoked": [],
    "comp_later": [],
    "free": [],
}


async def ensure_default_tier(session: AsyncSession) -> None:
    """Put back the default tier that migration 0014 made, when an earlier test's wipe took it."""
    if (await session.exec(select(Tier).where(Tier.slug == "paid"))).first() is None:
        session.add(Tier(name="Paid", slug="paid", is_default=True))
        await session.flush()


async def make_tier_table(app: FastAPI) -> TierTable:
    """Write the table: three tiers besides the default (one archived), a plan each, and one
    reader per way of holding (or no longer holding) a tier."""
    table, now = TierTable(expected=EXPECTED), utcnow()
    async with app.state.db.session() as session:
        await ensure_default_tier(session)
        tiers = [
            Tier(name="Standard", slug="standard", sort_order=1),
            Tier(name="Supporter", slug="supporter", sort_order=2),
            Tier(name="Old", slug="old", sort_order=9, active=False),
        ]
        users = [User(email=f"{name.replace('_', '-')}@tiers.example") for name in EXPECTED]
        session.add_all([*tiers, *users])
        await session.flush()
        table.tiers = {t.slug: pk(t.id) for t in tiers}
        table.members = {name: pk(u.id) for name, u in zip(EXPECTED, users, strict=True)}
        plans = {
            "standard_month": Plan(tier_id=table.tiers["standard"], name="Standard", amount=800),
            "supporter_year": Plan(
                tier_id=table.tiers["supporter"], name="Supporter", amount=12000, interval="year"
            ),
            "old_month": Plan(tier_id=table.tiers["old"], name="Old", amount=500, currency="eur"),
        }
        session.add_all(plans.values())
        await session.flush()
        table.plans = {key: pk(plan.id) for key, plan in plans.items()}
        session.add_all(_rows(table, now))
    return table
