"""A local Stripe for tests: localstripe (customers, plans, subscriptions, invoices) behind a
small proxy of ours that adds what localstripe lacks (Checkout and Portal sessions, Prices),
honours Idempotency-Key like Stripe does, and can inject failures."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import stripe
from aiohttp import web

from tests.smtp import free_ports


def _wait_for(
    port: int, timeout: float = 90.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the stand-in exited with {process.returncode}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def sign(body: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header exactly as Stripe builds it."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(
    kind: str, obj: dict[str, Any], *, event_id: str | None = None, created: int | None = None
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_{secrets.token_hex(12)}",
        "object": "event",
        "type": kind,
        "created": created or int(time.time()),
        "api_version": "2024-06-20",
        "livemode": False,
        "data": {"object": obj},
    }


@dataclass
class Faults:
    fail_subscription_fetches: int = 0


@dataclass
class StandIn:
    localstripe_port: int
    port: int
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    seen_keys: list[tuple[str, str, str]] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)
    idempotency_cache: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    # Each price change made on a subscription: (subscription, price, proration_behavior).
    price_changes: list[tuple[str, str, str]] = field(default_factory=list)

    def reset(self) -> None:
        """Forget everything: localstripe's store, sessions, idempotency keys, faults."""
        import urllib.request

        request = urllib.request.Request(
            f"http://127.0.0.1:{self.localstripe_port}/_config/data", method="DELETE"
        )
        with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - loopback only
            pass
        self.sessions.clear()
        self.seen_keys.clear()
        self.idempotency_cache.clear()
        self.price_changes.clear()
        self.faults = Faults()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A synchronous SDK client straight at localstripe, for arranging test state."""
        return stripe.StripeClient(
            "sk_test_standin", base_addresses={"api": f"http://127.0.0.1:{self.localstripe_port}"}
        ).v1

    def complete_checkout(self, session_id: str, *, status_card: bool = True) -> dict[str, Any]:
        """Pay a checkout session: create its subscription at localstripe, like Stripe would."""
        checkout = self.sessions[session_id]
        v1 = self.client()
        customer = checkout["customer"]
        if status_card:
            method = v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {
                        "number": "4242424242424242",
                        "exp_month": 12,
                        "exp_year": 2035,
                        "cvc": "123",
                    },
                }
            )
            v1.payment_methods.attach(method.id, params={"customer": customer})
            v1.customers.update(
                customer, params={"invoice_settings": {"default_payment_method": method.id}}
            )
        params: dict[str, Any] = {
            "customer": customer,
            "items": [{"plan": checkout["price"]}],
            "metadata": checkout["subscription_metadata"],
        }
        if checkout.get("trial_days"):
            params["trial_period_days"] = int(checkout["trial_days"])
        sub = v1.subscriptions.create(params=params)
        checkout["subscription"] = sub.id
        return {
            "id": session_id,
            "object": "checkout.session",
            "mode": "subscription",
            "customer": customer,
            "subscription": sub.id,
            "client_reference_id": checkout["client_reference_id"],
            "metadata": checkout["metadata"],
            "status": "complete",
        }


class _Proxy:
    def __init__(self, standin: StandIn) -> None:
        self.standin = standin
        self.upstream = f"http://127.0.0.1:{standin.localstripe_port}"
        self.locks: dict[str, asyncio.Lock] = {}

    async def handle(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "")
        if key:
            self.standin.seen_keys.append((request.method, request.path, key))
        if request.method == "POST" and key:
            lock = self.locks.setdefault(key, asyncio.Lock())
            async with lock:
                if key in self.standin.idempotency_cache:
                    status, body = self.standin.idempotency_cache[key]
                    return web.Response(status=status, body=body, content_type="application/json")
                response = await self.route(request)
                self.standin.idempotency_cache[key] = (response.status, response.body)  # type: ignore[assignment]
                return response
        return await self.route(request)

    async def route(self, request: web.Request) -> web.Response:
        path = request.path
        if request.method == "POST" and path == "/v1/checkout/sessions":
            return await self.checkout(request)
        if request.method == "POST" and path == "/v1/billing_portal/sessions":
            form = await request.post()
            return _json(
                {
                    "id": f"bps_{secrets.token_hex(8)}",
                    "object": "billing_portal.session",
                    "customer": form.get("customer"),
                    "url": f"https://billing.stripe.test/p/{secrets.token_hex(6)}",
                }
            )
        if request.method == "POST" and path == "/v1/prices":
            return await self.price(request)
        if request.method == "POST" and path.startswith("/v1/subscriptions/"):
            return await self.subscription_update(request)
        if (
            request.method == "GET"
            and path.startswith("/v1/subscriptions/")
            and self.standin.faults.fail_subscription_fetches > 0
        ):
            self.standin.faults.fail_subscription_fetches -= 1
            return _json({"error": {"type": "api_error", "message": "injected"}}, status=500)
        return await self.forward(request)

    async def checkout(self, request: web.Request) -> web.Response:
        form = await request.post()
        sid = f"cs_test_{secrets.token_hex(10)}"
        metadata = {k[9:-1]: str(v) for k, v in form.items() if k.startswith("metadata[")}
        sub_meta = {
            k[len("subscription_data[metadata][") : -1]: str(v)
            for k, v in form.items()
            if k.startswith("subscription_data[metadata][")
        }
        self.standin.sessions[sid] = {
            "customer": form.get("customer"),
            "price": form.get("line_items[0][price]"),
            "client_reference_id": form.get("client_reference_id"),
            "metadata": metadata,
            "subscription_metadata": sub_meta,
            "trial_days": form.get("subscription_data[trial_period_days]"),
            "allow_promotion_codes": form.get("allow_promotion_codes"),
            "success_url": form.get("success_url"),
            "subscription": None,
        }
        return _json(
            {
                "id": sid,
                "object": "checkout.session",
                "mode": "subscription",
                "customer": form.get("customer"),
                "metadata": metadata,
                "url": f"https://checkout.stripe.test/c/pay/{sid}",
            }
        )

    async def price(self, request: web.Request) -> web.Response:
        form = await request.post()
        price_id = f"price_{secrets.token_hex(8)}"
        async with (
            aiohttp.ClientSession() as http,
            http.post(
                f"{self.upstream}/v1/plans",
                headers={"Authorization": "Bearer sk_test_standin"},
                data={
                    "id": price_id,
                    "product": form.get("product"),
                    "amount": form.get("unit_amount"),
                    "currency": form.get("currency"),
                    "interval": form.get("recurring[interval]"),
                },
            ) as response,
        ):
            if response.status >= 400:
                return web.Response(
                    status=response.status,
                    body=await response.read(),
                    content_type="application/json",
                )
        return _json(
            {
                "id": price_id,
                "object": "price",
                "product": form.get("product"),
                "unit_amount": int(str(form.get("unit_amount"))),
                "currency": form.get("currency"),
                "recurring": {"interval": form.get("recurring[interval]")},
            }
        )

    async def subscription_update(self, request: web.Request) -> web.Response:
        """An update as Stripe takes it today: localstripe knows an item's price as its plan
        and has no proration_behavior (it never bills a change), so both are translated and
        the change noted for the tests."""
        form = await request.post()
        fields = [(k, str(v)) for k, v in form.items() if k != "proration_behavior"]
        price = form.get("items[0][price]")
        if price is not None:
            subscription = request.path.rsplit("/", 1)[-1]
            behavior = str(form.get("proration_behavior", "create_prorations"))
            self.standin.price_changes.append((subscription, str(price), behavior))
        body = urlencode([(k.replace("[price]", "[plan]"), v) for k, v in fields])
        return await self.forward(request, body=body.encode())

    async def forward(self, request: web.Request, *, body: bytes | None = None) -> web.Response:
        if body is None:
            body = await request.read()
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() in {"authorization", "content-type", "stripe-version"}
        }
        async with (
            aiohttp.ClientSession() as http,
            http.request(
                request.method, f"{self.upstream}{request.path_qs}", data=body, headers=headers
            ) as response,
        ):
            return web.Response(
                status=response.status,
                body=await response.read(),
                content_type="application/json",
            )


def _json(data: dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data), content_type="application/json")


class StandInServer:
    """localstripe in a subprocess and the proxy in a thread, both on free loopback ports."""

    def __init__(self) -> None:
        localstripe_port, proxy_port = free_ports(2)
        self.standin = StandIn(localstripe_port=localstripe_port, port=proxy_port)
        self._process: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def start(self) -> StandIn:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "localstripe", "--port", str(self.standin.localstripe_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # A fresh virtual environment compiles localstripe on first import: allow for that.
        _wait_for(self.standin.localstripe_port, process=self._process)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(10)
        _wait_for(self.standin.port)
        return self.standin

    async def _serve(self) -> None:
        proxy = _Proxy(self.standin)
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", proxy.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.standin.port).start()

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
