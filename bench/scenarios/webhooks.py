"""Scenario 5: N distinct signed customer.subscription.updated events, then the same N again.

The app runs the real StripeGateway against the test stand-in (localstripe behind our proxy),
so every first delivery re-fetches its subscription over HTTP, as in production.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import orjson
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.stripe_standin import StandIn, StandInServer, event, sign

SECRET = "whsec_bench"
CONCURRENCY = 32


def _subscription(standin: StandIn, user_id: int, price: str) -> str:
    v1 = standin.client()
    customer = v1.customers.create(params={"metadata": {"user_id": str(user_id)}})
    method = v1.payment_methods.create(params={"type": "card", "card": {
        "number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}})
    v1.payment_methods.attach(method.id, params={"customer": customer.id})
    v1.customers.update(customer.id, params={"invoice_settings": {"default_payment_method": method.id}})
    sub = v1.subscriptions.create(params={"customer": customer.id, "items": [{"plan": price}],
                                          "metadata": {"user_id": str(user_id)}})
    return str(sub.id)


async def _user_ids(url: str, count: int) -> list[int]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = (await conn.execute(text(
            "SELECT id FROM \"user\" WHERE role = 'reader' ORDER BY id DESC LIMIT :n"), {"n": count})).all()
    await engine.dispose()
    return [r[0] for r in rows]


async def _deliver(base: str, events: list[dict[str, Any]]) -> tuple[float, dict[int, int]]:
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for item in events:
        queue.put_nowait(item)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            evt = queue.get_nowait()
            body = orjson.dumps(evt)
            response = await client.post(f"{base}/api/v1/webhooks/stripe", content=body,
                                         headers={"Stripe-Signature": sign(body, SECRET)})
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=60) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, statuses


def run(url: str, env: dict[str, str], count: int, workers: int) -> dict[str, Any]:
    from bench.run import free_port, serve, stop

    server = StandInServer()
    standin = server.start()
    try:
        v1 = standin.client()
        product = v1.products.create(params={"name": "Bench"})
        v1.plans.create(params={"id": "price_bench", "product": product.id, "amount": 800,
                                "currency": "usd", "interval": "month"})
        users = asyncio.run(_user_ids(url, count))
        with ThreadPoolExecutor(8) as pool:
            subs = list(pool.map(lambda uid: _subscription(standin, uid, "price_bench"), users))
        port = free_port()
        app = serve("app.main:create_app", port, workers, {
            **env, "BROADSHEET_STRIPE_SECRET_KEY": "sk_test_bench",
            "BROADSHEET_STRIPE_API_BASE": standin.url, "BROADSHEET_STRIPE_WEBHOOK_SECRET": SECRET,
        })
        try:
            events = [event("customer.subscription.updated", {"id": s, "object": "subscription"}) for s in subs]
            first_s, first = asyncio.run(_deliver(f"http://127.0.0.1:{port}", events))
            again_s, again = asyncio.run(_deliver(f"http://127.0.0.1:{port}", events))
        finally:
            stop(app)
    finally:
        server.stop()
    first_rate, dup_rate = count / first_s, count / again_s
    return {
        "events": count,
        "first_delivery_events_per_s": round(first_rate, 1),
        "duplicate_events_per_s": round(dup_rate, 1),
        "duplicates_speedup": round(dup_rate / first_rate, 2),
        "first_statuses": first,
        "duplicate_statuses": again,
    }
