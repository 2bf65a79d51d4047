"""The payment gateway boundary: what Broadsheet asks of Stripe (or the local stand-in), the
events it receives from it, and the choice of gateway from the settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from app.billing.errors import InvalidEvent
from app.core.config import Proration, Settings


class GatewayError(Exception):
    """The payment provider failed or could not be reached; the caller may retry later."""


@dataclass(frozen=True)
class SubscriptionState:
    """A subscription as the provider knows it now: the authority we copy from."""

    id: str
    customer_id: str
    status: str
    price_id: str | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    trial_end: datetime | None
    canceled_at: datetime | None
    amount: int
    currency: str
    interval: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckoutRequest:
    customer_id: str
    price_id: str
    trial_days: int
    success_url: str
    cancel_url: str
    user_id: int
    plan_id: int
    article_slug: str | None
    idempotency_key: str


@dataclass(frozen=True)
class PriceChange:
    """Move a subscription's one item to another price (the plan's facts are for gateways
    that keep their own prices: the local one)."""

    subscription_id: str
    price_id: str
    amount: int
    currency: str
    interval: str
    proration: Proration
    idempotency_key: str


@dataclass(frozen=True)
class CheckoutSession:
    id: str
    url: str


@dataclass(frozen=True, slots=True)
class WebhookEvent:
    """A verified event from the provider: what happened (`type`) to which `object`.

    `body` is the whole event as it came, which the ledger stores and a replay reads back.
    """

    id: str
    type: str
    created: int
    object: dict[str, Any]
    body: dict[str, Any]

    @classmethod
    def from_json(cls, payload: bytes | str) -> WebhookEvent:
        """Give back the event a JSON body holds; InvalidEvent when it holds none."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent("The body is not valid JSON.") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Any) -> WebhookEvent:
        """Give back the event `data` is; InvalidEvent when it has no id, type or object."""
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("id"), str)
            or not isinstance(data.get("type"), str)
        ):
            raise InvalidEvent("The event has no id or type.")
        wrapper = data.get("data", {})
        obj = wrapper.get("object", {}) if isinstance(wrapper, dict) else None
        created = _whole_number(data.get("created") or 0)
        if not isinstance(obj, dict) or created is None:
            raise InvalidEvent("The event's object or creation time is malformed.")
        return cls(data["id"], data["type"], created, obj, data)


def _whole_number(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def object_id(value: Any) -> str | None:
    """Give back the id of an expanded object or an id string (Stripe sends either)."""
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


def customer_of(obj: dict[str, Any]) -> str | None:
    """Give back the provider customer an event's object is about, if it names one."""
    if obj.get("object") == "customer":
        return object_id(obj.get("id"))
    return object_id(obj.get("customer"))


class PaymentGateway(Protocol):
    name: str
    # Whether the provider's webhooks reach this gateway over HTTP (`POST /webhooks/stripe`);
    # the local gateway's events are made and received inside the app.
    accepts_webhooks: bool

    async def ensure_customer(self, *, user_id: int, email: str) -> str:
        """Create the provider's customer for a reader (idempotent per user)."""
        ...

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession: ...

    async def create_portal(self, *, customer_id: str, return_url: str) -> str: ...

    async def fetch_subscription(self, subscription_id: str) -> SubscriptionState | None:
        """The provider's current state of a subscription; None if it does not exist."""
        ...

    async def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool
    ) -> SubscriptionState: ...

    async def cancel_now(self, subscription_id: str) -> SubscriptionState: ...

    async def change_price(self, change: PriceChange) -> SubscriptionState:
        """Move a subscription to another price, billed as `change.proration` says; the same
        idempotency key twice changes it once. Give back the provider's state after."""
        ...

    def event_of_change(self, subscription_id: str) -> WebhookEvent | None:
        """The signed `customer.subscription.updated` a change made through this gateway
        sends, when its events are made inside the app (local); None when the provider sends
        its own (Stripe)."""
        ...

    async def delete_customer(self, customer_id: str) -> None:
        """Delete the provider's customer (account deletion); one already gone is fine."""
        ...

    def list_subscriptions(self) -> AsyncIterator[SubscriptionState]: ...

    async def ensure_product(self, *, tier_id: int, name: str) -> str:
        """Create the product of a tier (one per tier); give back its id."""
        ...

    async def ensure_price(
        self, *, plan_id: int, product_id: str, amount: int, currency: str, interval: str
    ) -> str:
        """Create the price of a plan under its tier's product; give back its id."""
        ...

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        """Give back the event a signed webhook body holds.

        Raises SignatureMissing without a header, BadSignature when the signature does not
        hold (or its time is out of bounds) and InvalidEvent when the body is no event.
        """
        ...

    async def close(self) -> None:
        """Release the gateway's connections (the app's shutdown, the end of a CLI command)."""
        ...


def build_gateway(settings: Settings) -> PaymentGateway:
    """Stripe when a secret key is set, else the local gateway (refused in production)."""
    # Imported here: both implementations import this module's types. The SDK is loaded
    # only when Stripe is the gateway.
    from app.billing.local_gateway import LocalGateway
    from app.billing.stripe_gateway import StripeGateway

    if settings.stripe_secret_key:
        return StripeGateway(settings)
    return LocalGateway(settings)
