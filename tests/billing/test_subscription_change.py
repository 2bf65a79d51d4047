"""Moving between tiers (POST /me/subscription/change) end to end: the StripeGateway against
the Stripe stand-in, the webhook copying the result, the history rows, what a downgrade
keeps until period end, every refusal, idempotency, and the local gateway's path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlmodel import col, select

from app.accounts.models import Role
from app.billing.models import Subscription, SubscriptionChange
from app.billing.plan_change import Decision, Price, decide
from app.core.config import Proration, Settings
from tests.billing.conftest import Billing, standin_settings
from tests.billing.test_account_deletion import _while_held
from tests.billing.test_local_gateway import checkout_path, submit
from tests.conftest import make_settings
from tests.factories import ArticleFactory, Factory, Member
from tests.smtp import SmtpSink
from tests.stripe_standin import StandIn, event

CHANGE = "/api/v1/me/subscription/change"


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings a test changes (parametrize `overrides`); `local: True` means no Stripe key."""
    return {}


@pytest.fixture
def settings(
    database_url: str,
    tmp_path: Path,
    smtp_sink: SmtpSink,
    standin: StandIn,
    overrides: dict[str, Any],
) -> Settings:
    """The stand-in's settings with the test's overrides, or the local gateway's."""
    overrides = dict(overrides)
    if overrides.pop("local", False):
        return make_settings(database_url, tmp_path / "var", smtp_sink.port, **overrides)
    return standin_settings(database_url, tmp_path / "var", smtp_sink.port, standin, **overrides)


class Tiers:
    """Two tiers, each with a month and a year price, made through the admin API."""

    def __init__(self, client: AsyncClient, admin: Member) -> None:
        self.client, self.admin = client, admin
        self.plans: dict[str, dict[str, Any]] = {}
        self.tier_ids: dict[str, int] = {}

    async def make(self, currency: str = "usd") -> Tiers:
        for slug, monthly, yearly in (("standard", 800, 8000), ("supporter", 2000, 20000)):
            made = await self.client.post(
                "/api/v1/admin/tiers",
                json={"name": slug.title(), "slug": slug},
                headers=self.admin.headers,
            )
            assert made.status_code == 201, made.text
            self.tier_ids[slug] = made.json()["id"]
            for interval, amount in (("month", monthly), ("year", yearly)):
                self.plans[f"{slug}-{interval}"] = await self.plan(
                    tier_id=made.json()["id"], interval=interval, amount=amount, currency=currency
                )
        return self

    async def plan(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "A plan", "amount": 800, "currency": "usd", "interval": "month", **fields}
        made = await self.client.post("/api/v1/admin/plans", json=body, headers=self.admin.headers)
        assert made.status_code == 201, made.text
        return made.json()  # type: ignore[no-any-return]


@pytest.fixture
async def tiers(client: AsyncClient, factory: Factory) -> Tiers:
    return await Tiers(client, await factory.member(role=Role.admin)).make()


async def subscription_row(app: FastAPI, member: Member) -> Subscription:
    """The reader's one subscription row, as the access model reads it."""
    async with app.state.db.session() as session:
        rows = (
            await session.exec(select(Subscription).where(Subscription.user_id == member.id))
        ).all()
    assert len(rows) == 1, rows
    found: Subscription = rows[0]
    return found


async def history(app: FastAPI, member: Member) -> list[SubscriptionChange]:
    async with app.state.db.session() as session:
        rows = await session.exec(
            select(SubscriptionChange)
            .where(SubscriptionChange.user_id == member.id)
            .order_by(col(SubscriptionChange.id))
        )
        return list(rows.all())


async def change(
    client: AsyncClient, member: Member, plan_id: object, key: str | None = None
) -> Response:
    headers = member.headers | ({"Idempotency-Key": key} if key else {})
    return await client.post(CHANGE, json={"plan_id": plan_id}, headers=headers)


async def updated_at_stripe(billing: Billing, subscription_id: str) -> None:
    """Deliver the event Stripe sends after a subscription changed."""
    delivered = await billing.deliver(
        event("customer.subscription.updated", {"id": subscription_id, "object": "subscription"})
    )
    assert delivered.status_code == 200, delivered.text


async def supporters_only(factory: Factory, articles: ArticleFactory) -> str:
    """A published article for the supporter tier; gives back its slug."""
    editor = await factory.member(role=Role.editor)
    made = await articles.make(
        editor, body=SUPPORTERS_BODY, visibility="tiers", tiers=["supporter"]
    )
    return made.slug


SUPPORTERS_BODY = "Open.\n\n<!-- paywall -->\n\nFor supporters only."


async def reads(client: AsyncClient, member: Member, slug: str) -> str:
    """What the article page answers the reader now: their access reason."""
    page = (await client.get(f"/api/v1/articles/{slug}", headers=member.headers)).json()
    assert ("For supporters only." in (page["content_html"] or "")) is page["access"]["granted"]
    reason: str = page["access"]["reason"]
    return reason


async def test_an_upgrade_applies_now_prorated_and_the_webhook_copies_it(
    app: FastAPI,
    billing: Billing,
    client: AsyncClient,
    factory: Factory,
    tiers: Tiers,
    articles: ArticleFactory,
) -> None:
    member = await factory.member()
    standard, supporter = tiers.plans["standard-month"], tiers.plans["supporter-month"]
    paid = await billing.subscribe(member, standard)
    slug = await supporters_only(factory, articles)
    assert await reads(client, member, slug) == "tier_required"
    answered = await change(client, member, supporter["id"])
    assert answered.status_code == 200, answered.text
    assert answered.json()["plan"]["id"] == supporter["id"]
    assert answered.json()["kept_plan"] is None and answered.json()["kept_until"] is None
    assert billing.standin.price_changes == [
        (paid["subscription"], supporter["stripe_price_id"], "create_prorations")
    ]
    await updated_at_stripe(billing, paid["subscription"])
    # Access follows on the next request after the webhook.
    assert await reads(client, member, slug) == "entitled"
    row = await subscription_row(app, member)
    assert (row.plan_id, row.amount, row.interval) == (supporter["id"], 2000, "month")
    assert row.kept_plan_id is None and row.kept_until is None
    rows = await history(app, member)
    moves = [(c.from_plan_id, c.to_plan_id, c.from_tier_id, c.to_tier_id) for c in rows]
    # The checkout's row, then one row for the change (the webhook's copy found it done).
    assert moves == [
        (None, standard["id"], None, tiers.tier_ids["standard"]),
        (standard["id"], supporter["id"], tiers.tier_ids["standard"], tiers.tier_ids["supporter"]),
    ]


async def test_a_downgrade_keeps_the_higher_tier_until_the_period_ends(
    app: FastAPI,
    billing: Billing,
    client: AsyncClient,
    factory: Factory,
    tiers: Tiers,
    articles: ArticleFactory,
) -> None:
    member = await factory.member()
    standard, supporter = tiers.plans["standard-month"], tiers.plans["supporter-month"]
    paid = await billing.subscribe(member, supporter)
    slug = await supporters_only(factory, articles)
    assert await reads(client, member, slug) == "entitled"
    period_end = (await subscription_row(app, member)).current_period_end
    assert period_end is not None
    answered = await change(client, member, standard["id"])
    assert answered.status_code == 200, answered.text
    body = answered.json()
    assert body["plan"]["id"] == standard["id"] and body["kept_plan"]["id"] == supporter["id"]
    assert datetime.fromisoformat(body["kept_until"]) == period_end
    # The lower price is at Stripe now, unprorated: the next invoice bills it.
    assert billing.standin.price_changes == [
        (paid["subscription"], standard["stripe_price_id"], "none")
    ]
    await updated_at_stripe(billing, paid["subscription"])
    row = await subscription_row(app, member)
    assert (row.plan_id, row.amount) == (standard["id"], 800)
    assert (row.kept_plan_id, row.kept_until) == (supporter["id"], period_end)
    last = (await history(app, member))[-1]
    assert (last.from_tier_id, last.to_tier_id) == (
        tiers.tier_ids["supporter"],
        tiers.tier_ids["standard"],
    )
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["kept_plan"]["id"] == supporter["id"]
    # The supporter tier is kept until the period paid for ends, and goes then.
    assert await reads(client, member, slug) == "entitled"
    async with app.state.db.session() as session:
        row = await session.get(Subscription, row.id)
        assert row is not None
        row.kept_until = datetime.now(UTC) - timedelta(seconds=1)
        session.add(row)
    assert await reads(client, member, slug) == "tier_required"


async def test_going_back_to_the_kept_plan_is_not_billed_again(
    app: FastAPI, billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    member = await factory.member()
    standard, supporter = tiers.plans["standard-month"], tiers.plans["supporter-month"]
    await billing.subscribe(member, supporter)
    assert (await change(client, member, standard["id"])).status_code == 200
    back = await change(client, member, supporter["id"])
    assert back.status_code == 200, back.text
    assert back.json()["plan"]["id"] == supporter["id"] and back.json()["kept_plan"] is None
    assert [behavior for _, _, behavior in billing.standin.price_changes] == ["none", "none"]
    row = await subscription_row(app, member)
    assert row.kept_plan_id is None and row.kept_until is None


@pytest.mark.parametrize(
    "overrides",
    [{"billing_downgrade_at_period_end": False, "billing_proration": "always_invoice"}],
)
async def test_with_downgrades_at_once_nothing_is_kept_and_the_setting_bills(
    app: FastAPI, billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    member = await factory.member()
    await billing.subscribe(member, tiers.plans["supporter-month"])
    answered = await change(client, member, tiers.plans["standard-month"]["id"])
    assert answered.status_code == 200, answered.text
    assert answered.json()["kept_plan"] is None
    assert [behavior for _, _, behavior in billing.standin.price_changes] == ["always_invoice"]
    assert (await subscription_row(app, member)).kept_plan_id is None


async def test_a_downgrade_to_another_interval_applies_now(
    app: FastAPI, billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    """A year of the standard tier costs less a month than its month plan: a downgrade, but
    Stripe bills a new interval at once, so it is prorated now rather than kept."""
    member = await factory.member()
    await billing.subscribe(member, tiers.plans["standard-month"])
    yearly = tiers.plans["standard-year"]
    answered = await change(client, member, yearly["id"])
    assert answered.status_code == 200, answered.text
    assert answered.json()["kept_plan"] is None
    assert [behavior for _, _, behavior in billing.standin.price_changes] == ["create_prorations"]
    row = await subscription_row(app, member)
    assert (row.plan_id, row.interval, row.amount) == (yearly["id"], "year", 8000)


async def test_a_change_made_at_stripe_is_copied_by_the_webhook_with_its_history(
    app: FastAPI, billing: Billing, factory: Factory, tiers: Tiers
) -> None:
    """The webhook is the truth: a change made elsewhere (Stripe's portal) arrives as an
    updated event, and our copy's plan, amount and history follow; a second delivery of
    another updated event writes no second history row."""
    member = await factory.member()
    standard, supporter = tiers.plans["standard-month"], tiers.plans["supporter-month"]
    paid = await billing.subscribe(member, standard)
    stripe = billing.standin.client()
    item = stripe.subscriptions.retrieve(paid["subscription"])["items"].data[0]
    items = [{"id": item.id, "plan": supporter["stripe_price_id"]}]
    stripe.subscriptions.update(paid["subscription"], params={"items": items})
    assert (await subscription_row(app, member)).plan_id == standard["id"]
    await updated_at_stripe(billing, paid["subscription"])
    await updated_at_stripe(billing, paid["subscription"])
    row = await subscription_row(app, member)
    assert (row.plan_id, row.amount) == (supporter["id"], 2000)
    rows = await history(app, member)
    moves = [(c.from_tier_id, c.to_tier_id, c.from_status, c.to_status) for c in rows]
    assert moves[1:] == [
        (tiers.tier_ids["standard"], tiers.tier_ids["supporter"], "active", "active")
    ]


async def test_the_same_idempotency_key_twice_changes_once_at_stripe(
    billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    member = await factory.member()
    await billing.subscribe(member, tiers.plans["standard-month"])
    supporter = tiers.plans["supporter-month"]
    first = await change(client, member, supporter["id"], key="change-1")
    again = await change(client, member, supporter["id"], key="change-1")
    assert first.status_code == again.status_code == 200, again.text
    assert first.json() == again.json()
    assert len(billing.standin.price_changes) == 1
    other_key = await change(client, member, supporter["id"], key="change-2")
    assert other_key.status_code == 409 and other_key.json()["code"] == "same_plan"
    assert len(billing.standin.price_changes) == 1


async def test_a_double_click_without_a_key_changes_once_at_stripe(
    billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    member = await factory.member()
    await billing.subscribe(member, tiers.plans["standard-month"])
    supporter = tiers.plans["supporter-month"]
    clicks = await asyncio.gather(*(change(client, member, supporter["id"]) for _ in range(2)))
    # The second click either shares the first one's change or finds it made.
    assert {c.status_code for c in clicks} <= {200, 409} and clicks[0].status_code == 200
    assert len(billing.standin.price_changes) == 1


async def test_refusals_have_stable_codes(
    app: FastAPI, billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    standard, supporter = tiers.plans["standard-month"], tiers.plans["supporter-month"]
    nobody = await factory.member()
    refused = await change(client, nobody, supporter["id"])
    assert (refused.status_code, refused.json()["code"]) == (404, "no_subscription")
    assert refused.headers["content-type"].startswith("application/problem+json")
    member = await factory.member()
    await billing.subscribe(member, standard)
    off_sale = await tiers.plan(name="Old", amount=900, active=False)
    euro = await tiers.plan(name="Euro", amount=900, currency="eur")
    expected = {
        standard["id"]: (409, "same_plan"),
        999_999: (404, "plan_not_found"),
        off_sale["id"]: (404, "plan_not_found"),
        euro["id"]: (422, "currency_mismatch"),
        "not-an-id": (422, "validation_error"),
    }
    for plan_id, (status, code) in expected.items():
        answered = await change(client, member, plan_id)
        assert (answered.status_code, answered.json()["code"]) == (status, code), plan_id
    anonymous = await client.post(CHANGE, json={"plan_id": supporter["id"]})
    assert anonymous.status_code == 401
    assert billing.standin.price_changes == []


async def test_a_subscription_past_due_canceling_or_ended_cannot_change(
    app: FastAPI, billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    supporter = tiers.plans["supporter-month"]
    member = await factory.member()
    paid = await billing.subscribe(member, tiers.plans["standard-month"])
    canceling = await client.post("/api/v1/me/subscription/cancel", headers=member.headers)
    assert canceling.status_code == 200
    refused = await change(client, member, supporter["id"])
    assert (refused.status_code, refused.json()["code"]) == (409, "subscription_canceling")
    await client.post("/api/v1/me/subscription/resume", headers=member.headers)
    async with app.state.db.session() as session:
        row = await session.get(Subscription, (await subscription_row(app, member)).id)
        assert row is not None
        row.status, row.past_due_since = "past_due", datetime.now(UTC) - timedelta(days=1)
        session.add(row)
    past_due = await change(client, member, supporter["id"])
    assert (past_due.status_code, past_due.json()["code"]) == (409, "subscription_past_due")
    billing.standin.client().subscriptions.cancel(paid["subscription"])
    ended = event("customer.subscription.deleted", {"id": paid["subscription"]})
    assert (await billing.deliver(ended)).status_code == 200
    after_end = await change(client, member, supporter["id"])
    assert (after_end.status_code, after_end.json()["code"]) == (409, "subscription_ended")
    assert billing.standin.price_changes == []


async def test_a_change_asks_stripe_with_no_write_lock_held(
    app: FastAPI, billing: Billing, client: AsyncClient, factory: Factory, tiers: Tiers
) -> None:
    member = await factory.member()
    await billing.subscribe(member, tiers.plans["standard-month"])
    body = {"plan_id": tiers.plans["supporter-month"]["id"]}
    await _while_held(app, client, billing, "change_price", "POST", CHANGE, body, member.headers)


async def test_the_route_documents_its_answers(client: AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"][CHANGE]["post"]
    assert {"200", "401", "404", "409", "422", "503"} <= set(operation["responses"])
    assert "same_plan" in operation["responses"]["409"]["description"]
    header = [p for p in operation["parameters"] if p["name"].lower() == "idempotency-key"]
    assert header and header[0]["in"] == "header"


@pytest.mark.parametrize("overrides", [{"local": True}])
async def test_the_local_gateway_changes_through_its_signed_event(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    made = await Tiers(client, admin).make(currency="eur")
    standard, supporter = made.plans["standard-month"], made.plans["supporter-month"]
    member = await factory.member()
    paid = await submit(client, await checkout_path(client, member, supporter["id"]))
    assert paid.status_code == 303
    answered = await change(client, member, standard["id"])
    assert answered.status_code == 200, answered.text
    assert answered.json()["kept_plan"]["id"] == supporter["id"]
    stored = (await client.get("/api/v1/admin/billing/events", headers=admin.headers)).json()
    assert [(e["type"], e["status"]) for e in stored["items"]][0] == (
        "customer.subscription.updated",
        "processed",
    )
    row = await subscription_row(app, member)
    assert (row.plan_id, row.amount, row.kept_plan_id) == (standard["id"], 800, supporter["id"])
    last = (await history(app, member))[-1]
    assert (last.from_tier_id, last.to_tier_id, last.event_id) == (
        made.tier_ids["supporter"],
        made.tier_ids["standard"],
        stored["items"][0]["event_id"],
    )


NOW = datetime(2027, 1, 10, tzinfo=UTC)
END = datetime(2027, 2, 1, tzinfo=UTC)
STANDARD, SUPPORTER = Price(1, 800, "month"), Price(2, 2000, "month")
STANDARD_YEAR, PATRON = Price(3, 8000, "year"), Price(4, 5000, "month")
KEEP, NONE = Proration.create_prorations, Proration.none
BASIC = Price(5, 500, "month")


@pytest.mark.parametrize(
    ("current", "target", "kept", "kept_until", "at_period_end", "expected"),
    [
        (STANDARD, SUPPORTER, None, None, True, Decision("upgrade", KEEP, None, None)),
        (SUPPORTER, STANDARD, None, None, True, Decision("downgrade", NONE, 2, END)),
        (SUPPORTER, STANDARD, None, None, False, Decision("downgrade", KEEP, None, None)),
        (STANDARD, STANDARD_YEAR, None, None, True, Decision("downgrade", KEEP, None, None)),
        # Kept from an earlier downgrade: going back, lower still, or above it.
        (STANDARD, SUPPORTER, SUPPORTER, END, True, Decision("upgrade", NONE, None, None)),
        (STANDARD, BASIC, SUPPORTER, END, True, Decision("downgrade", NONE, 2, END)),
        (STANDARD, PATRON, SUPPORTER, END, True, Decision("upgrade", KEEP, None, None)),
        # A kept plan whose time is over counts for nothing.
        (STANDARD, SUPPORTER, SUPPORTER, NOW, True, Decision("upgrade", KEEP, None, None)),
    ],
)  # fmt: skip
def test_how_a_change_is_billed_and_what_is_kept(
    current: Price,
    target: Price,
    kept: Price | None,
    kept_until: datetime | None,
    at_period_end: bool,
    expected: Decision,
    settings: Settings,
) -> None:
    rules = settings.model_copy(update={"billing_downgrade_at_period_end": at_period_end})
    decided = decide(
        current, target, kept=kept, kept_until=kept_until, period_end=END, now=NOW, settings=rules
    )
    assert decided == expected
