"""The payment gateway boundary: what Broadsheet asks of Stripe (or the local stand-in)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


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
class CheckoutSession:
    id: str
    url: str


class PaymentGateway(Protocol):
    name: str

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

    async def delete_customer(self, customer_id: str) -> None:
        """Delete the provider's customer (account deletion); one already gone is fine."""
        ...

    def list_subscriptions(self) -> AsyncIterator[SubscriptionState]: ...

    async def ensure_price(
        self,
        *,
        plan_id: int,
        name: str,
        amount: int,
        currency: str,
        interval: str,
        product_id: str | None,
    ) -> tuple[str, str]:
        """Create the product and price of a plan; give back (product_id, price_id)."""
        ...

    async def close(self) -> None:
        """Release the gateway's connections (the app's shutdown, the end of a CLI command)."""
        ...
