"""The subscription copy rule (provider_state.copy_subscription and the functions that lock
or reload around it), on the database itself."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from sqlmodel import col, select

from app.billing import provider_state
from app.billing.gateway import SubscriptionState
from app.billing.models import Plan, Subscription, SubscriptionChange, Tier
from tests.billing.conftest import PERIOD_END
from tests.billing.conftest import subscription_state as state
from tests.factories import Factory


async def copy(app: FastAPI, user_id: int, copied: SubscriptionState) -> Subscription:
    async with app.state.db.session() as session:
        await provider_state.lock_and_copy(
            session, copied, user_id=user_id, provider="stripe", event_id="e"
        )
    async with app.state.db.session() as session:
        copied_row: Subscription = (await session.exec(select(Subscription))).one()
        return copied_row


async def changes(app: FastAPI) -> list[tuple[str | None, str]]:
    async with app.state.db.session() as session:
        rows = await session.exec(select(SubscriptionChange).order_by(col(SubscriptionChange.id)))
        return [(row.from_status, row.to_status) for row in rows.all()]


async def test_copy_inserts_then_updates_and_records_only_status_changes(
    app: FastAPI, factory: Factory
) -> None:
    member = await factory.member()
    async with app.state.db.session() as session:
        tier = Tier(name="Rule", slug="rule")
        session.add(tier)
        await session.flush()
        plan = Plan(tier_id=tier.id or 0, name="Monthly", amount=800, stripe_price_id="price_rule")
        session.add(plan)
        await session.flush()
        plan_id = plan.id

    first = await copy(app, member.id, state())
    assert (first.user_id, first.customer_id, first.plan_id, first.status) == (
        member.id,
        "cus_rule",
        plan_id,
        "active",
    )
    assert first.current_period_end == PERIOD_END and first.created_at is not None

    # Same status, new period: updated in place, no history row.
    later = PERIOD_END + timedelta(days=31)
    second = await copy(app, member.id, state(current_period_end=later, cancel_at_period_end=True))
    assert second.id == first.id
    assert (second.current_period_end, second.cancel_at_period_end) == (later, True)
    assert await changes(app) == [(None, "active")]

    # A price we have no plan for, and no customer: our copy keeps what it knew.
    third = await copy(app, member.id, state(price_id="price_unknown", customer_id=""))
    assert (third.plan_id, third.customer_id) == (plan_id, "cus_rule")
    fourth = await copy(app, member.id, state(price_id=None, status="canceled"))
    assert fourth.plan_id == plan_id
    assert await changes(app) == [(None, "active"), ("active", "canceled")]


async def test_past_due_since_is_the_first_past_due_copy_and_clears_after(
    app: FastAPI, factory: Factory
) -> None:
    member = await factory.member()
    await copy(app, member.id, state())
    began = (await copy(app, member.id, state(status="past_due"))).past_due_since
    assert began is not None
    # Stripe's retries keep it past_due: the grace period still counts from the first one.
    assert (await copy(app, member.id, state(status="past_due"))).past_due_since == began
    assert (await copy(app, member.id, state())).past_due_since is None
    assert await changes(app) == [(None, "active"), ("active", "past_due"), ("past_due", "active")]


async def test_copy_and_load_refreshes_an_entity_the_session_already_holds(
    app: FastAPI, factory: Factory
) -> None:
    member = await factory.member()
    await copy(app, member.id, state())
    async with app.state.db.session() as session:
        held = (await session.exec(select(Subscription))).one()
        after = await provider_state.copy_and_load(
            session, state(status="canceled"), user_id=member.id, provider="stripe", event_id=None
        )
        assert after is held and held.status == "canceled"
