"""`broadsheet stripe-sync`: one Stripe product per tier, each plan's price under its tier's
product, nothing new on a second run; run as the command, against the Stripe stand-in."""

from __future__ import annotations

import anyio
import pytest
from fastapi import FastAPI
from sqlmodel import col, select
from typer.testing import CliRunner

from app.billing import tiers as billing_tiers
from app.billing.models import Plan, Tier
from app.cli import app as cli
from app.core.config import Settings, get_settings
from tests.stripe_standin import StandIn


def _sync(settings: Settings, standin: StandIn, monkeypatch: pytest.MonkeyPatch) -> str:
    for name, value in {
        "BROADSHEET_DATABASE_URL": settings.resolved_database_url,
        "BROADSHEET_VAR_DIR": str(settings.var_dir),
        "BROADSHEET_STRIPE_SECRET_KEY": "sk_test_standin",
        "BROADSHEET_STRIPE_API_BASE": standin.url,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["stripe-sync"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


async def _catalogue(app: FastAPI) -> tuple[list[Tier], list[Plan]]:
    async with app.state.db.session(write=False) as session:
        tiers = (await session.exec(select(Tier).order_by(col(Tier.id)))).all()
        plans = (await session.exec(select(Plan).order_by(col(Plan.id)))).all()
    return list(tiers), list(plans)


async def test_stripe_sync_makes_one_product_per_tier_and_prices_under_it_once(
    app: FastAPI, settings: Settings, standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    stripe = standin.client()
    legacy_product = stripe.products.create(params={"name": "Monthly (before tiers)"})
    async with app.state.db.session() as session:
        # The migration's default tier, or one made like it if an earlier test emptied it.
        paid = await billing_tiers.default_tier(session)
        supporter = Tier(name="Supporter", slug="supporter")
        session.add(supporter)
        await session.flush()
        session.add_all(
            [
                Plan(tier_id=paid.id or 0, name="Monthly", amount=800),
                Plan(tier_id=paid.id or 0, name="Yearly", amount=8000, interval="year"),
                Plan(tier_id=supporter.id or 0, name="Big", amount=2000),
                # Priced before tiers, under a product of its own: kept as it is.
                Plan(
                    tier_id=paid.id or 0,
                    name="Old",
                    amount=500,
                    stripe_product_id=legacy_product.id,
                    stripe_price_id="price_legacy",
                ),
            ]
        )

    first = await anyio.to_thread.run_sync(_sync, settings, standin, monkeypatch)
    tiers, plans = await _catalogue(app)
    products = {t.id: t.stripe_product_id for t in tiers}
    assert None not in products.values() and len(set(products.values())) == 2
    for plan in plans[:3]:
        assert plan.stripe_price_id and plan.stripe_product_id == products[plan.tier_id]
        assert stripe.plans.retrieve(plan.stripe_price_id).product == products[plan.tier_id]
    assert (plans[3].stripe_product_id, plans[3].stripe_price_id) == (
        legacy_product.id,
        "price_legacy",
    )
    assert {stripe.products.retrieve(p).name for p in products.values()} == {"Paid", "Supporter"}
    assert first.count("created") == 5 and "made before tiers" in first

    second = await anyio.to_thread.run_sync(_sync, settings, standin, monkeypatch)
    assert "created" not in second and second.count("kept") == 6
    assert await _catalogue(app) == (tiers, plans)
