"""Billing tests run the real StripeGateway over HTTP against the local Stripe stand-in."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response

from app.accounts.models import Role
from app.billing.gateway import SubscriptionState
from app.core.config import Settings
from tests.conftest import make_settings
from tests.factories import Factory, Member
from tests.smtp import SmtpSink
from tests.stripe_standin import StandIn, StandInServer, event, sign

WEBHOOK_SECRET = "whsec_test_current"
PERIOD_END = datetime(2027, 1, 1, tzinfo=UTC)
OLD_SECRET = "whsec_test_previous"


def subscription_state(**fields: Any) -> SubscriptionState:
    """A provider's subscription state: an active monthly one unless `fields` say otherwise."""
    base = SubscriptionState(
        id="sub_rule",
        customer_id="cus_rule",
        status="active",
        price_id="price_rule",
        current_period_end=PERIOD_END,
        cancel_at_period_end=False,
        trial_end=None,
        canceled_at=None,
        amount=800,
        currency="usd",
        interval="month",
    )
    return replace(base, **fields)


@pytest.fixture(scope="session")
def standin() -> Iterator[StandIn]:
    server = StandInServer()
    yield server.start()
    server.stop()


def standin_settings(
    database_url: str, var_dir: Path, smtp_port: int, standin: StandIn, **overrides: object
) -> Settings:
    """Test settings with the StripeGateway pointed at a freshly reset stand-in."""
    standin.reset()
    values: dict[str, object] = {
        "stripe_secret_key": "sk_test_standin",
        "stripe_api_base": standin.url,
        "stripe_webhook_secret": f"{WEBHOOK_SECRET},{OLD_SECRET}",
    }
    return make_settings(database_url, var_dir, smtp_port, **(values | overrides))


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_sink: SmtpSink, standin: StandIn) -> Settings:
    return standin_settings(database_url, tmp_path / "var", smtp_sink.port, standin)


class Billing:
    """Test helpers: plans, checkouts, signed webhook deliveries."""

    def __init__(
        self, app: FastAPI, client: AsyncClient, factory: Factory, standin: StandIn
    ) -> None:
        self.app, self.client, self.factory, self.standin = app, client, factory, standin
        self._admin: Member | None = None

    async def admin(self) -> Member:
        if self._admin is None:
            self._admin = await self.factory.member(role=Role.admin)
        return self._admin

    async def plan(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Monthly", "amount": 800, "currency": "usd", "interval": "month", **fields}
        response = await self.client.post(
            "/api/v1/admin/plans", json=body, headers=(await self.admin()).headers
        )
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    async def deliver(self, evt: dict[str, Any], *, secret: str = WEBHOOK_SECRET) -> Response:
        body = orjson.dumps(evt)
        return await self.client.post(
            "/api/v1/webhooks/stripe",
            content=body,
            headers={"Stripe-Signature": sign(body, secret), "Content-Type": "application/json"},
        )

    async def pay(self, member: Member, plan: dict[str, Any]) -> dict[str, Any]:
        """Start a checkout and pay it at the stand-in; no webhook is delivered yet."""
        started = await self.client.post(
            "/api/v1/billing/checkout", json={"plan_id": plan["id"]}, headers=member.headers
        )
        assert started.status_code == 200, started.text
        return self.standin.complete_checkout(started.json()["checkout_url"].rsplit("/", 1)[-1])

    async def subscribe(self, member: Member, plan: dict[str, Any]) -> dict[str, Any]:
        """Checkout, pay at the stand-in, deliver the completion event; give back the session."""
        paid = await self.pay(member, plan)
        delivered = await self.deliver(event("checkout.session.completed", paid))
        assert delivered.status_code == 200, delivered.text
        return paid


@pytest.fixture
def billing(app: FastAPI, client: AsyncClient, factory: Factory, standin: StandIn) -> Billing:
    return Billing(app, client, factory, standin)


__all__ = ["Billing", "event", "sign"]
