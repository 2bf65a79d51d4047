"""Deleting an account leaves no personal data behind (review M5) and the export shows all of
it before (L16); the provider is asked with no write lock held (M2)."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import stripe
from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.accounts.models import Consent, EmailToken
from app.billing.models import StripeEvent
from app.core.mail_outbox import OutboxMessage
from app.newsletter.models import Subscriber
from tests.billing.conftest import Billing
from tests.conftest import token_from_mail
from tests.factories import DEFAULT_PASSWORD
from tests.newsletter.conftest import Mailroom
from tests.smtp import SmtpSink

ADDRESS = "leaving@example.com"


async def _reader_with_everything(
    app: FastAPI, client: AsyncClient, billing: Billing, smtp_sink: SmtpSink
) -> tuple[dict[str, str], str]:
    """An address that subscribed to the newsletter before it had an account, then made one
    and paid; give back its headers and its Stripe customer id."""
    await Mailroom(app, client, billing.factory, smtp_sink).newsletter("daily")
    await client.post("/api/v1/newsletter/subscribe", json={"email": ADDRESS, "accept_terms": True})
    await client.post(
        "/api/v1/newsletter/confirm", json={"token": token_from_mail(smtp_sink, ADDRESS)}
    )
    # A second opt-in link, never used: a token kept by address.
    await Mailroom(app, client, billing.factory, smtp_sink).newsletter("weekly")
    await client.post(
        "/api/v1/newsletter/subscribe",
        json={"email": ADDRESS, "accept_terms": True, "newsletters": ["weekly"]},
    )
    member = await billing.factory.member(email=ADDRESS)
    paid = await billing.subscribe(member, await billing.plan())
    await client.patch(
        f"/api/v1/admin/members/{member.id}",
        headers=(await billing.admin()).headers,
        json={"labels": ["vip"]},
    )
    return member.headers, str(paid["customer"])


async def test_the_export_shows_what_deletion_will_erase(
    app: FastAPI, client: AsyncClient, billing: Billing, smtp_sink: SmtpSink
) -> None:
    headers, customer = await _reader_with_everything(app, client, billing, smtp_sink)
    data = (await client.get("/api/v1/me/export", headers=headers)).json()
    assert data["billing"] == {"customer_id": customer}
    assert data["labels"] == ["vip"]
    assert [n["email"] for n in data["newsletters"]] == [ADDRESS]
    assert [entry["newsletter"] for entry in data["newsletters"][0]["lists"]] == ["daily"]
    # The newsletter's consent was given without an account, to the address.
    assert {c["source"] for c in data["consents"]} == {"newsletter"}
    assert data["preferences"] == {"comment_reply_emails": False}


async def test_deletion_erases_what_is_kept_by_address_too(
    app: FastAPI, client: AsyncClient, billing: Billing, smtp_sink: SmtpSink
) -> None:
    headers, customer = await _reader_with_everything(app, client, billing, smtp_sink)
    gone = await client.request(
        "DELETE", "/api/v1/me", headers=headers, json={"password": DEFAULT_PASSWORD}
    )
    assert gone.status_code == 204, gone.text
    async with app.state.db.session(write=False) as session:
        for model, column in (
            (Subscriber, Subscriber.email),
            (Consent, Consent.email),
            (EmailToken, EmailToken.email),
            (OutboxMessage, OutboxMessage.to_address),
        ):
            left = (await session.exec(select(model).where(column == ADDRESS))).all()
            assert left == [], model.__name__
        events = (
            await session.exec(select(StripeEvent).where(StripeEvent.customer_id == customer))
        ).all()
        assert events
        for row in events:
            assert ADDRESS not in row.payload
            assert "email" not in _values(orjson.loads(row.payload))
    # The customer is gone at Stripe too; its subscription ended at once.
    try:
        found = billing.standin.client().customers.retrieve(customer)
        assert getattr(found, "deleted", False)
    except stripe.InvalidRequestError as exc:
        assert exc.http_status == 404


def _values(node: Any, key: str = "") -> set[str]:
    """The keys holding a non-empty value anywhere in a JSON tree."""
    if isinstance(node, dict):
        return set().union(*(_values(v, k) for k, v in node.items())) if node else set()
    if isinstance(node, list):
        return set().union(*(_values(v, key) for v in node)) if node else set()
    return {key} if node not in (None, "", {}) else set()


class _HeldGateway:
    """The app's gateway, with one call held until the test lets it go."""

    def __init__(self, real: Any, held: str) -> None:
        self._real, self._held = real, held
        self.called = asyncio.Event()
        self.release = asyncio.Event()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._real, name)
        if name != self._held:
            return method

        async def held(*args: Any, **kwargs: Any) -> Any:
            self.called.set()
            await self.release.wait()
            return await method(*args, **kwargs)

        return held


async def _while_held(
    app: FastAPI, client: AsyncClient, billing: Billing, call: str, method: str, path: str,
    body: dict[str, Any], headers: dict[str, str],
) -> None:  # fmt: skip
    bystander = await billing.factory.member()
    gateway = _HeldGateway(app.state.gateway, call)
    app.state.gateway = gateway
    request = asyncio.create_task(client.request(method, path, json=body, headers=headers))
    try:
        await asyncio.wait_for(gateway.called.wait(), timeout=10)
        # While Stripe is being asked, another reader's write goes through.
        other = await asyncio.wait_for(
            client.put("/api/v1/me/comment-reply-emails?on=true", headers=bystander.headers),
            timeout=10,
        )
        assert other.status_code == 200
    finally:
        gateway.release.set()
        answered = await request
        app.state.gateway = gateway._real
    assert answered.status_code < 300, answered.text


async def test_checkout_cancel_and_deletion_ask_stripe_with_no_write_lock_held(
    app: FastAPI, client: AsyncClient, billing: Billing
) -> None:
    plan = await billing.plan()
    member = await billing.factory.member()
    await _while_held(
        app, client, billing, "create_checkout", "POST", "/api/v1/billing/checkout",
        {"plan_id": plan["id"]}, member.headers,
    )  # fmt: skip
    subscriber = await billing.factory.member()
    await billing.subscribe(subscriber, plan)
    await _while_held(
        app, client, billing, "set_cancel_at_period_end", "POST",
        "/api/v1/me/subscription/cancel", {}, subscriber.headers,
    )  # fmt: skip
    await _while_held(
        app, client, billing, "cancel_now", "DELETE", "/api/v1/me",
        {"password": subscriber.password}, subscriber.headers,
    )  # fmt: skip
