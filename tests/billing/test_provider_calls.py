"""Stripe is never asked while a write transaction is open: what applying an event needs from
the provider is fetched before its transaction begins (on SQLite a write transaction holds
the file's only write lock, on PostgreSQL row locks, for as long as Stripe takes)."""

from __future__ import annotations

import inspect
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update
from sqlalchemy.engine import make_url
from sqlmodel import col, select

from app.accounts.models import User
from app.billing.models import StripeEvent
from tests.billing.conftest import Billing
from tests.factories import Factory
from tests.stripe_standin import event

Probe = Callable[[], Awaitable[bool]]


def sqlite_probe(path: str) -> Probe:
    """Ask the database file itself: a write transaction holds its write lock, so another
    connection's BEGIN IMMEDIATE fails at once."""

    async def open_writer() -> bool:
        conn = sqlite3.connect(path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc):
                raise
            return True
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()
        return False

    return open_writer


def postgres_probe(conn: asyncpg.Connection) -> Probe:
    """Ask the server: a transaction that wrote or locked a row has a transaction id."""

    async def open_writer() -> bool:
        found = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
        )
        return bool(found)

    return open_writer


@pytest.fixture
async def open_writer(app: FastAPI) -> AsyncIterator[Probe]:
    url = make_url(app.state.settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database
        yield sqlite_probe(url.database)
        return
    conn = await asyncpg.connect(url.set(drivername="postgresql").render_as_string(False))
    try:
        yield postgres_probe(conn)
    finally:
        await conn.close()


class CheckedGateway:
    """The app's real gateway; before each call it asks the database whether a write
    transaction is open, and notes the call if one is."""

    def __init__(self, real: Any, open_writer: Probe) -> None:
        self.real, self._open_writer = real, open_writer
        self.inside: list[str] = []
        self.fetched: list[str] = []
        # Run once, after the next subscription fetch: what happens meanwhile elsewhere.
        self.meanwhile: Callable[[], Awaitable[None]] | None = None

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.real, name)
        if not inspect.iscoroutinefunction(method):
            return method

        async def checked(*args: Any, **kwargs: Any) -> Any:
            if await self._open_writer():
                self.inside.append(name)
            answer = await method(*args, **kwargs)
            if name == "fetch_subscription":
                self.fetched.append(args[0])
                meanwhile, self.meanwhile = self.meanwhile, None
                if meanwhile is not None:
                    await meanwhile()
            return answer

        return checked


@pytest.fixture
def gateway(app: FastAPI, open_writer: Probe) -> Iterator[CheckedGateway]:
    checked = CheckedGateway(app.state.gateway, open_writer)
    app.state.gateway = checked
    yield checked
    app.state.gateway = checked.real


async def test_the_probe_sees_an_open_write_transaction(
    app: FastAPI, factory: Factory, open_writer: Probe
) -> None:
    member = await factory.member()
    assert not await open_writer()
    async with app.state.db.session() as session:
        await session.exec(
            update(User).where(col(User.id) == member.id).values(display_name="Changed")
        )
        assert await open_writer()
    assert not await open_writer()


async def status_of(app: FastAPI, event_id: str) -> str:
    async with app.state.db.session(write=False) as session:
        found = await session.exec(
            select(StripeEvent.status).where(StripeEvent.event_id == event_id)
        )
        return str(found.one())


def subscriptions_without_owner(billing: Billing, price_id: str, count: int) -> list[str]:
    """A customer and `count` subscriptions made at Stripe without naming our reader (no
    metadata, no link of ours); give back the customer's id, then the subscriptions'."""
    stripe = billing.standin.client()
    customer = stripe.customers.create(params={"email": "direct@example.com"})
    method = stripe.payment_methods.create(
        params={
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"},
        }
    )
    stripe.payment_methods.attach(method.id, params={"customer": customer.id})
    stripe.customers.update(
        customer.id, params={"invoice_settings": {"default_payment_method": method.id}}
    )
    subs = [
        stripe.subscriptions.create(params={"customer": customer.id, "items": [{"plan": price_id}]})
        for _ in range(count)
    ]
    return [customer.id, *(sub.id for sub in subs)]


async def test_a_checkout_that_applies_earlier_events_asks_stripe_outside_the_transaction(
    billing: Billing, factory: Factory, gateway: CheckedGateway
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    customer_id, sub_id, other_sub_id = subscriptions_without_owner(
        billing, plan["stripe_price_id"], 2
    )
    # Nothing names the reader yet: the events wait, unmatched, for the checkout that does.
    waiting = [
        event(
            "customer.subscription.created",
            {"id": sub, "object": "subscription", "customer": customer_id},
        )
        for sub in (sub_id, other_sub_id)
    ]
    for evt in waiting:
        assert (await billing.deliver(evt)).json()["status"] == "unmatched"
    checkout = {
        "id": "cs_names_the_reader",
        "object": "checkout.session",
        "customer": customer_id,
        "subscription": sub_id,
        "client_reference_id": str(member.id),
    }
    fetched_before = len(gateway.fetched)
    completed = await billing.deliver(event("checkout.session.completed", checkout))
    assert completed.status_code == 200 and completed.json()["status"] == "processed"
    assert [await status_of(billing.app, evt["id"]) for evt in waiting] == ["processed"] * 2
    # The checkout's subscription was asked first; the other one's, which only the waiting
    # events need, once they were found.
    assert gateway.fetched[fetched_before:] == [sub_id, other_sub_id]
    assert gateway.inside == []
    admin = await billing.admin()
    found = await billing.client.get(f"/api/v1/admin/members/{member.id}", headers=admin.headers)
    assert [s["status"] for s in found.json()["subscriptions"]] == ["active", "active"]


async def test_a_copy_written_meanwhile_is_fetched_again_outside_the_transaction(
    billing: Billing, factory: Factory, client: AsyncClient, gateway: CheckedGateway
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    sub_id = (await billing.subscribe(member, plan))["subscription"]
    fetched_before = len(gateway.fetched)

    async def another_delivery() -> None:
        # While this event waits on Stripe, the reader cancels at period end and that event
        # is applied: our copy is now newer than the answer this one got, and says otherwise.
        billing.standin.client().subscriptions.update(sub_id, params={"cancel_at_period_end": True})
        other = event("customer.subscription.updated", {"id": sub_id, "object": "subscription"})
        assert (await billing.deliver(other)).json()["status"] == "processed"

    gateway.meanwhile = another_delivery
    evt = event("customer.subscription.updated", {"id": sub_id, "object": "subscription"})
    answered = await billing.deliver(evt)
    assert answered.status_code == 200 and answered.json()["status"] == "processed"
    # This event's question, the other delivery's, and this one's again after it.
    assert gateway.fetched[fetched_before:] == [sub_id] * 3
    assert gateway.inside == []
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["cancel_at_period_end"] is True


async def test_a_copy_written_meanwhile_that_says_the_same_needs_no_second_question(
    billing: Billing, factory: Factory, gateway: CheckedGateway
) -> None:
    """Several events about one subscription at once (Stripe sends a handful at checkout)
    all got the same answer: each copies it, none asks again."""
    plan = await billing.plan()
    member = await factory.member()
    sub_id = (await billing.subscribe(member, plan))["subscription"]
    fetched_before = len(gateway.fetched)

    async def another_delivery() -> None:
        other = event("customer.subscription.updated", {"id": sub_id, "object": "subscription"})
        assert (await billing.deliver(other)).json()["status"] == "processed"

    gateway.meanwhile = another_delivery
    evt = event("customer.subscription.updated", {"id": sub_id, "object": "subscription"})
    answered = await billing.deliver(evt)
    assert answered.status_code == 200 and answered.json()["status"] == "processed"
    assert gateway.fetched[fetched_before:] == [sub_id] * 2
    assert gateway.inside == []


async def test_a_new_plan_gets_its_price_outside_the_transaction_and_both_writes_are_audited(
    billing: Billing, gateway: CheckedGateway
) -> None:
    plan = await billing.plan()
    assert plan["stripe_price_id"]
    assert gateway.inside == []
    admin = await billing.admin()
    found = await billing.client.get(
        f"/api/v1/admin/audit?entity=plan&entity_id={plan['id']}", headers=admin.headers
    )
    entries = sorted(found.json()["items"], key=lambda entry: entry["id"])
    assert [(e["action"], e["actor_id"]) for e in entries] == [
        ("create", admin.id),
        ("update", admin.id),
    ]
    assert entries[1]["after"]["stripe_price_id"] == plan["stripe_price_id"]
