"""A built-in payment gateway for development and demos: no Stripe, no network.

Its checkout is a small HTML page served by Broadsheet itself; confirming it makes the event
Stripe would send, signed by this gateway, and hands it to the same webhook path a Stripe
delivery takes (see local_checkout.py). State lives in one JSON file under `var/`. Refused in
production by the settings check.

Its pages answer only links it issued: each carries an HMAC of the session or customer id
(`sig`), so a guessed customer id or an altered link is no page. Their forms carry a token
of their own, kept inside the page, so a form posted from another site confirms or cancels
nothing.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import orjson

from app.billing.errors import BadSignature, InvalidEvent, SignatureMissing
from app.billing.gateway import (
    CheckoutRequest,
    CheckoutSession,
    GatewayError,
    PriceChange,
    SubscriptionState,
    WebhookEvent,
)
from app.core.config import Settings
from app.core.private_files import private_dir, write_private
from app.core.security import sign, signature_matches

PERIODS = {"month": timedelta(days=30), "year": timedelta(days=365)}
# How old (or how far ahead) a signed event may be, as for Stripe's.
EVENT_TOLERANCE_SECONDS = 300

Page = Literal["checkout", "portal"]


def _new_id(prefix: str) -> str:
    return f"{prefix}_local_{secrets.token_hex(8)}"


class LocalGateway:
    name = "local"
    # Its events never come over HTTP: they are made and received inside the app.
    accepts_webhooks = False

    def __init__(self, settings: Settings) -> None:
        self._path: Path = settings.var_dir / "local-gateway.json"
        self._base = settings.api_url.rstrip("/")
        self._secret = settings.jwt_secret
        self._lock = asyncio.Lock()

    def page_path(self, page: Page, value: str) -> str:
        """Give back the path of the page about `value` (a session or customer id), signed."""
        return f"/billing/local/{page}/{quote(value, safe='')}?sig={self._sign(page, value)}"

    def link_is_ours(self, page: Page, value: str, signature: str) -> bool:
        """Tell whether `signature` is the one this gateway put in its link to the page."""
        return self._matches(page, value, signature)

    def form_token(self, page: Page, value: str) -> str:
        """Give back the token the page's forms carry (it is never part of a link)."""
        return self._sign(f"{page}-form", value)

    def form_is_ours(self, page: Page, value: str, token: str) -> bool:
        return self._matches(f"{page}-form", value, token)

    def signed_event(self, kind: str, obj: dict[str, Any]) -> tuple[bytes, str]:
        """Give back an event about `obj` as a provider posts one: body and signature header
        (Stripe's `t=<time>,v1=<HMAC of "<time>.<body>">`, with this gateway's own key)."""
        now = int(time.time())
        body = orjson.dumps(
            {
                "id": f"evt_local_{secrets.token_hex(10)}",
                "object": "event",
                "type": kind,
                "created": now,
                "data": {"object": obj},
            }
        )
        return body, f"t={now},v1={self._sign('webhook', f'{now}.{body.decode()}')}"

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> WebhookEvent:
        if not signature_header:
            raise SignatureMissing("The signature header is missing.")
        items = dict(item.partition("=")[::2] for item in signature_header.split(","))
        signed_at, signature = items.get("t", ""), items.get("v1", "")
        try:
            text = payload.decode()
        except UnicodeDecodeError as exc:
            raise InvalidEvent("The body is not UTF-8 JSON.") from exc
        if not (signed_at.isascii() and signed_at.isdigit()):
            raise BadSignature("The signature has no time.")
        if abs(time.time() - int(signed_at)) > EVENT_TOLERANCE_SECONDS:
            raise BadSignature("The signature is too old or in the future.")
        if not self._matches("webhook", f"{signed_at}.{text}", signature):
            raise BadSignature("The signature is not this gateway's.")
        return WebhookEvent.from_json(payload)

    def _sign(self, purpose: str, value: str) -> str:
        return sign(self._secret, f"local-gateway:{purpose}", value)

    def _matches(self, purpose: str, value: str, signature: str) -> bool:
        # compare_digest refuses non-ASCII text; such a signature is simply not ours.
        return signature.isascii() and signature_matches(
            self._secret, f"local-gateway:{purpose}", value, signature
        )

    def _load(self) -> dict[str, dict[str, Any]]:
        if not self._path.exists():
            return {"customers": {}, "sessions": {}, "subscriptions": {}, "prices": {}, "keys": {}}
        data: dict[str, dict[str, Any]] = json.loads(self._path.read_text())
        return data

    def _save(self, data: dict[str, dict[str, Any]]) -> None:
        private_dir(self._path.parent)
        tmp = self._path.with_suffix(".tmp")
        write_private(tmp, json.dumps(data, indent=1).encode())
        tmp.replace(self._path)

    async def ensure_customer(self, *, user_id: int, email: str) -> str:
        async with self._lock:
            data = self._load()
            for cid, customer in data["customers"].items():
                if customer["user_id"] == user_id:
                    return cid
            cid = _new_id("cus")
            data["customers"][cid] = {"user_id": user_id, "email": email}
            self._save(data)
            return cid

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        async with self._lock:
            data = self._load()
            existing = data["keys"].get(request.idempotency_key)
            if existing:
                return CheckoutSession(existing, self._base + self.page_path("checkout", existing))
            sid = _new_id("cs")
            data["sessions"][sid] = {
                "customer": request.customer_id,
                "price": request.price_id,
                "trial_days": request.trial_days,
                "user_id": request.user_id,
                "plan_id": request.plan_id,
                "article_slug": request.article_slug,
                "success_url": request.success_url,
                "cancel_url": request.cancel_url,
                "subscription": None,
            }
            data["keys"][request.idempotency_key] = sid
            self._save(data)
        return CheckoutSession(sid, self._base + self.page_path("checkout", sid))

    async def session(self, session_id: str) -> dict[str, Any] | None:
        async with self._lock:
            found: dict[str, Any] | None = self._load()["sessions"].get(session_id)
            return found

    async def complete_checkout(
        self, session_id: str, *, amount: int, currency: str, interval: str
    ) -> dict[str, Any]:
        """Pay a pending checkout: create its subscription; give back the session object."""
        async with self._lock:
            data = self._load()
            checkout = data["sessions"].get(session_id)
            if checkout is None:
                raise GatewayError("no such checkout session")
            if checkout["subscription"] is None:
                now = datetime.now(UTC)
                trial = checkout["trial_days"]
                sub_id = _new_id("sub")
                end = now + (
                    timedelta(days=trial) if trial else PERIODS.get(interval, PERIODS["month"])
                )
                data["subscriptions"][sub_id] = {
                    "id": sub_id,
                    "customer": checkout["customer"],
                    "status": "trialing" if trial else "active",
                    "price": checkout["price"],
                    "current_period_end": int(end.timestamp()),
                    "cancel_at_period_end": False,
                    "trial_end": int(end.timestamp()) if trial else None,
                    "canceled_at": None,
                    "amount": amount,
                    "currency": currency,
                    "interval": interval,
                    "metadata": {
                        "user_id": str(checkout["user_id"]),
                        "plan_id": str(checkout["plan_id"]),
                    },
                }
                checkout["subscription"] = sub_id
                self._save(data)
            return {
                "id": session_id,
                "object": "checkout.session",
                "customer": checkout["customer"],
                "subscription": checkout["subscription"],
                "client_reference_id": str(checkout["user_id"]),
                "metadata": {"user_id": str(checkout["user_id"])},
            }

    async def create_portal(self, *, customer_id: str, return_url: str) -> str:
        del return_url
        return self._base + self.page_path("portal", customer_id)

    async def subscriptions_of(self, customer_id: str) -> list[SubscriptionState]:
        async with self._lock:
            subs = self._load()["subscriptions"].values()
            return [_state(s) for s in subs if s["customer"] == customer_id]

    async def fetch_subscription(self, subscription_id: str) -> SubscriptionState | None:
        async with self._lock:
            sub = self._load()["subscriptions"].get(subscription_id)
            return _state(sub) if sub else None

    async def _update(self, subscription_id: str, **changes: Any) -> SubscriptionState:
        async with self._lock:
            data = self._load()
            sub = data["subscriptions"].get(subscription_id)
            if sub is None:
                raise GatewayError("no such subscription")
            sub.update(changes)
            self._save(data)
            return _state(sub)

    async def set_cancel_at_period_end(
        self, subscription_id: str, cancel: bool
    ) -> SubscriptionState:
        return await self._update(subscription_id, cancel_at_period_end=cancel)

    async def cancel_now(self, subscription_id: str) -> SubscriptionState:
        now = int(datetime.now(UTC).timestamp())
        return await self._update(subscription_id, status="canceled", canceled_at=now)

    async def change_price(self, change: PriceChange) -> SubscriptionState:
        async with self._lock:
            data = self._load()
            sub = data["subscriptions"].get(change.subscription_id)
            if sub is None:
                raise GatewayError("no such subscription")
            # Like Stripe's: a key already used answers the subscription as it is.
            if data["keys"].get(change.idempotency_key) != change.subscription_id:
                if sub["interval"] != change.interval:  # a new interval starts a new period
                    end = datetime.now(UTC) + PERIODS.get(change.interval, PERIODS["month"])
                    sub["current_period_end"] = int(end.timestamp())
                sub.update(
                    price=change.price_id,
                    amount=change.amount,
                    currency=change.currency,
                    interval=change.interval,
                )
                data["keys"][change.idempotency_key] = change.subscription_id
                self._save(data)
            return _state(sub)

    def event_of_change(self, subscription_id: str) -> WebhookEvent | None:
        obj = {"id": subscription_id, "object": "subscription"}
        return self.parse_webhook(*self.signed_event("customer.subscription.updated", obj))

    async def delete_customer(self, customer_id: str) -> None:
        async with self._lock:
            data = self._load()
            if data["customers"].pop(customer_id, None) is not None:
                self._save(data)

    async def list_subscriptions(self) -> AsyncIterator[SubscriptionState]:
        async with self._lock:
            subs = list(self._load()["subscriptions"].values())
        for sub in subs:
            yield _state(sub)

    async def close(self) -> None:
        """Nothing to release: the local gateway's state is a file, written per call."""

    async def ensure_product(self, *, tier_id: int, name: str) -> str:
        async with self._lock:
            data = self._load()
            product = f"prod_local_tier_{tier_id}"
            data.setdefault("products", {})[product] = {"name": name}
            self._save(data)
            return product

    async def ensure_price(
        self, *, plan_id: int, product_id: str, amount: int, currency: str, interval: str
    ) -> str:
        async with self._lock:
            data = self._load()
            price = f"price_local_{plan_id}_{amount}_{currency}_{interval}"
            data["prices"][price] = {"product": product_id, "amount": amount}
            self._save(data)
            return price


def _state(sub: dict[str, Any]) -> SubscriptionState:
    def ts(value: int | None) -> datetime | None:
        return datetime.fromtimestamp(value, UTC) if value else None

    return SubscriptionState(
        id=sub["id"],
        customer_id=sub["customer"],
        status=sub["status"],
        price_id=sub["price"],
        current_period_end=ts(sub["current_period_end"]),
        cancel_at_period_end=sub["cancel_at_period_end"],
        trial_end=ts(sub["trial_end"]),
        canceled_at=ts(sub["canceled_at"]),
        amount=sub["amount"],
        currency=sub["currency"],
        interval=sub["interval"],
        metadata=sub["metadata"],
    )
