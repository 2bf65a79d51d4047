"""Webhook processing: events stored before applied, applied exactly once, tolerant of order,
and retried safely after a failure (who may post one: test_webhook_signatures.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import func, select

from app.billing import events, handlers
from app.billing.gateway import WebhookEvent
from app.billing.models import Payment, StripeEvent, Subscription, SubscriptionChange
from app.core.db import utcnow
from tests.billing.conftest import Billing
from tests.factories import Factory
from tests.stripe_standin import StandIn, event


async def count(app: FastAPI, model: Any) -> int:
    async with app.state.db.session() as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_unknown_event_type_is_stored_and_ignored(
    client: AsyncClient, app: FastAPI, billing: Billing
) -> None:
    response = await billing.deliver(event("radar.early_fraud_warning.created", {"id": "x"}))
    assert response.status_code == 200
    assert response.json()["status"] == "ignored"
    assert await count(app, StripeEvent) == 1


async def test_same_event_twice_and_ten_at_once_apply_once(
    billing: Billing, factory: Factory, app: FastAPI, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.subscribe(member, plan)
    changes_after_first = await count(app, SubscriptionChange)
    evt = event(
        "customer.subscription.updated", {"id": paid["subscription"], "object": "subscription"}
    )
    first = await billing.deliver(evt)
    again = await billing.deliver(evt)
    assert first.json()["status"] == "processed"
    assert again.json()["status"] == "duplicate"
    burst = event(
        "invoice.paid",
        {
            "id": "in_burst_1",
            "object": "invoice",
            "customer": paid["customer"],
            "subscription": paid["subscription"],
            "amount_paid": 800,
            "currency": "usd",
            "created": int(time.time()),
        },
    )
    responses = await asyncio.gather(*(billing.deliver(burst) for _ in range(10)))
    assert all(r.status_code == 200 for r in responses)
    assert sorted(r.json()["status"] for r in responses).count("processed") == 1
    assert await count(app, Payment) == 1
    assert await count(app, SubscriptionChange) == changes_after_first


async def test_out_of_order_updates_never_resurrect_a_canceled_subscription(
    billing: Billing, factory: Factory, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.subscribe(member, plan)
    sub_id = paid["subscription"]
    old_update = event(
        "customer.subscription.updated",
        {"id": sub_id, "object": "subscription", "status": "active"},
        created=int(time.time()) - 100,
    )
    standin.client().subscriptions.cancel(sub_id)
    deleted = event("customer.subscription.deleted", {"id": sub_id, "status": "canceled"})
    assert (await billing.deliver(deleted)).status_code == 200
    assert (await billing.deliver(old_update)).status_code == 200
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["status"] == "canceled"
    assert mine["access_level"] == "member"


async def test_updated_before_created_ends_in_the_true_state(
    billing: Billing, factory: Factory, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    customer = standin.client().customers.create(params={"metadata": {"user_id": str(member.id)}})
    method = standin.client().payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"},
        }
    )
    standin.client().payment_methods.attach(method.id, params={"customer": customer.id})
    standin.client().customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    sub = standin.client().subscriptions.create(
        params={
            "customer": customer.id,
            "items": [{"plan": plan["stripe_price_id"]}],
            "metadata": {"user_id": str(member.id)},
        }
    )
    updated = event("customer.subscription.updated", {"id": sub.id})
    created = event("customer.subscription.created", {"id": sub.id}, created=int(time.time()) - 5)
    assert (await billing.deliver(updated)).json()["status"] == "processed"
    assert (await billing.deliver(created)).json()["status"] == "processed"
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["status"] == "active" and mine["access_level"] == "paid"
    assert mine["plan"]["id"] == plan["id"]


async def test_event_for_an_unknown_customer_is_stored_flagged_and_200(
    billing: Billing, app: FastAPI, standin: StandIn
) -> None:
    stranger = standin.client().customers.create(params={"email": "x@elsewhere.example"})
    evt = event(
        "invoice.paid",
        {
            "id": "in_stranger",
            "object": "invoice",
            "customer": stranger.id,
            "amount_paid": 500,
            "currency": "usd",
        },
    )
    response = await billing.deliver(evt)
    assert response.status_code == 200
    assert response.json()["status"] == "unmatched"
    async with app.state.db.session() as session:
        row = (await session.exec(select(StripeEvent))).one()
    assert row.status == "unmatched" and row.customer_id == stranger.id
    assert await count(app, Payment) == 0


async def test_invoice_paid_before_checkout_completed_loses_no_payment(
    billing: Billing, factory: Factory, app: FastAPI, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.pay(member, plan)
    invoice = event(
        "invoice.paid",
        {
            "id": "in_early",
            "object": "invoice",
            "customer": paid["customer"],
            "subscription": paid["subscription"],
            "amount_paid": 800,
            "currency": "usd",
        },
    )
    assert (await billing.deliver(invoice)).status_code == 200
    assert (await billing.deliver(event("checkout.session.completed", paid))).status_code == 200
    async with app.state.db.session() as session:
        payments = (await session.exec(select(Payment))).all()
    assert [(p.invoice_id, p.user_id, p.amount) for p in payments] == [("in_early", member.id, 800)]


async def test_failure_while_applying_is_5xx_leaves_nothing_and_retry_applies(
    billing: Billing, factory: Factory, app: FastAPI, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.pay(member, plan)
    evt = event("checkout.session.completed", paid)
    standin.faults.fail_subscription_fetches = 5  # more than the SDK's own retries
    failed = await billing.deliver(evt)
    assert failed.status_code == 500
    assert failed.json()["code"] == "webhook_failed"
    assert await count(app, Subscription) == 0
    async with app.state.db.session() as session:
        row = (await session.exec(select(StripeEvent))).one()
    assert row.status == "failed" and row.error
    standin.faults.fail_subscription_fetches = 0
    retried = await billing.deliver(evt)
    assert retried.status_code == 200 and retried.json()["status"] == "processed"
    assert await count(app, Subscription) == 1


async def test_a_subscription_stripe_does_not_know_is_none_and_the_event_5xx(
    billing: Billing, app: FastAPI
) -> None:
    assert await app.state.gateway.fetch_subscription("sub_nowhere0") is None
    evt = event("customer.subscription.updated", {"id": "sub_nowhere0", "object": "subscription"})
    failed = await billing.deliver(evt)
    assert failed.status_code == 500 and failed.json()["code"] == "webhook_failed"
    async with app.state.db.session() as session:
        row = (await session.exec(select(StripeEvent))).one()
    assert row.status == "failed" and "not found at the provider" in (row.error or "")
    assert await count(app, Subscription) == 0


async def test_admin_replays_a_failed_event(
    billing: Billing, factory: Factory, app: FastAPI, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.pay(member, plan)
    standin.faults.fail_subscription_fetches = 5
    assert (await billing.deliver(event("checkout.session.completed", paid))).status_code == 500
    standin.faults.fail_subscription_fetches = 0
    admin = await billing.admin()
    listing = await client.get("/api/v1/admin/billing/events?status=failed", headers=admin.headers)
    [failed] = listing.json()["items"]
    replayed = await client.post(
        f"/api/v1/admin/billing/events/{failed['id']}/replay", headers=admin.headers
    )
    assert replayed.status_code == 200
    assert replayed.json()["status"] == "processed"
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["access_level"] == "paid"
    assert (
        await client.get("/api/v1/admin/billing/events", headers=member.headers)
    ).status_code == 403


async def test_a_prefetched_state_older_than_our_copy_is_fetched_again(
    billing: Billing, factory: Factory, app: FastAPI
) -> None:
    """Stripe is asked before the transaction opens; if our copy was written after that
    question, another event may have copied a newer state, so the answer is not used."""
    plan = await billing.plan()
    member = await factory.member()
    sub_id = (await billing.subscribe(member, plan))["subscription"]
    gateway = app.state.gateway
    truth = await gateway.fetch_subscription(sub_id)
    assert truth is not None and truth.status == "active"
    made_up = dataclasses.replace(truth, status="past_due")
    evt = event("customer.subscription.updated", {"id": sub_id, "object": "subscription"})
    parsed = WebhookEvent.from_dict(evt)

    async def status_after_applying(asked_at: datetime) -> str:
        answers = {sub_id: handlers.Answer(made_up, asked_at)}
        await events.apply_answered(
            app.state.db, gateway, app.state.settings, parsed, answers, force=True, actor=None
        )
        async with app.state.db.session(write=False) as session:
            found = await session.exec(
                select(Subscription.status).where(Subscription.provider_subscription_id == sub_id)
            )
            return str(found.one())

    assert await status_after_applying(utcnow() - timedelta(minutes=5)) == "active"
    assert await status_after_applying(utcnow()) == "past_due"
