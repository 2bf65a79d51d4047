"""Scenario 5: N distinct signed customer.subscription.updated events, then the same N again.

The app runs the real StripeGateway (the stripe SDK over HTTP). Stripe's side is a small
in-memory server of prepared subscription objects on loopback: localstripe slows down
sharply past a few hundred subscriptions, and the bench measures Broadsheet, not a stand-in.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from tests.stripe_standin import event, sign

SECRET = "whsec_bench"  # noqa: S105 - the bench's own throwaway webhook secret
CONCURRENCY = 32


def subscription(sub_id: str, user_id: int) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": sub_id,
        "object": "subscription",
        "customer": f"cus_b{user_id}",
        "status": "active",
        "cancel_at_period_end": False,
        "current_period_end": now + 30 * 86400,
        "metadata": {"user_id": str(user_id)},
        "items": {
            "object": "list",
            "data": [
                {
                    "id": f"si_{sub_id}",
                    "object": "subscription_item",
                    "price": {
                        "id": "price_bench",
                        "object": "price",
                        "unit_amount": 800,
                        "currency": "usd",
                        "recurring": {"interval": "month"},
                    },
                }
            ],
        },
    }


class FakeStripe:
    """Answers GET /v1/subscriptions/{id} from a dict, in a process of its own.

    A process, not a thread of the load generator: sharing the generator's GIL made Stripe's
    answers wait on the client's own work and the app sat idle a third of the time.
    """

    def __init__(self, subscriptions: dict[str, dict[str, Any]], port: int) -> None:
        self.subscriptions = subscriptions
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self._file = tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False)  # noqa: SIM115

    def __enter__(self) -> FakeStripe:
        self._file.write(orjson.dumps(self.subscriptions))
        self._file.close()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.scenarios.webhooks", str(self.port), self._file.name]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return self
            time.sleep(0.1)
        raise SystemExit("the fake Stripe did not start")

    def __exit__(self, *_: object) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
        os.unlink(self._file.name)


def _serve_fake_stripe(port: int, path: str) -> None:
    subscriptions: dict[str, Any] = orjson.loads(Path(path).read_bytes())

    async def get(request: web.Request) -> web.Response:
        found = subscriptions.get(request.match_info["sub"])
        if found is None:
            return web.json_response({"error": {"type": "invalid_request_error"}}, status=404)
        return web.json_response(found)

    app = web.Application()
    app.router.add_get("/v1/subscriptions/{sub}", get)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


async def _user_ids(url: str, count: int) -> list[int]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT id FROM \"user\" WHERE role = 'reader' ORDER BY id DESC LIMIT :n"),
                {"n": count},
            )
        ).all()
    await engine.dispose()
    return [r[0] for r in rows]


async def _deliver(base: str, events: list[dict[str, Any]]) -> tuple[float, dict[int, int]]:
    """POST every event once, CONCURRENCY at a time; give back (seconds, count per status).

    Bodies are serialised and signed before the clock starts, and the client is aiohttp:
    with httpx signing inside the loop the client topped out near 1,200 requests/s (the
    duplicates' rate was the client's), and its CPU came out of the server's share.
    """
    prepared = []
    for item in events:
        body = orjson.dumps(item)
        prepared.append(
            (body, {"Stripe-Signature": sign(body, SECRET), "Content-Type": "application/json"})
        )
    pending = iter(prepared)
    statuses: dict[int, int] = {}
    url = f"{base}/api/v1/webhooks/stripe"

    async def worker(client: aiohttp.ClientSession) -> None:
        for body, headers in pending:
            async with client.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
        return time.perf_counter() - started, statuses


async def _applied(url: str, subscription_ids: list[str]) -> int:
    """How many of the bench's subscriptions the app copied (what "applied" counts)."""
    engine = create_async_engine(url)
    query = text("SELECT count(*) FROM subscription WHERE provider_subscription_id IN :ids")
    async with engine.connect() as conn:
        found = await conn.scalar(
            query.bindparams(bindparam("ids", expanding=True)), {"ids": subscription_ids}
        )
    await engine.dispose()
    return int(found or 0)


def run(url: str, env: dict[str, str], count: int, workers: int) -> dict[str, Any]:
    from bench.servers import free_port, serve, stop

    users = asyncio.run(_user_ids(url, count))
    subs = {f"sub_bench_{uid}_x": subscription(f"sub_bench_{uid}_x", uid) for uid in users}
    stripe_port, port = free_port(), free_port()
    with FakeStripe(subs, stripe_port):
        app = serve(
            "app.main:create_app",
            port,
            workers,
            {
                **env,
                "BROADSHEET_STRIPE_SECRET_KEY": "sk_test_bench",
                "BROADSHEET_STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
                "BROADSHEET_STRIPE_WEBHOOK_SECRET": SECRET,
            },
        )
        try:
            events = [
                event("customer.subscription.updated", {"id": s, "object": "subscription"})
                for s in subs
            ]
            first_s, first = asyncio.run(_deliver(f"http://127.0.0.1:{port}", events))
            again_s, again = asyncio.run(_deliver(f"http://127.0.0.1:{port}", events))
        finally:
            stop(app)
    applied = asyncio.run(_applied(url, list(subs)))
    # Applied, not answered: a 200 that copied nothing would not count.
    first_rate, dup_rate = applied / first_s, count / again_s
    return {
        "events": count,
        "applied": applied,
        "first_delivery_events_per_s": round(first_rate, 1),
        "duplicate_events_per_s": round(dup_rate, 1),
        "duplicates_speedup": round(dup_rate / first_rate, 2),
        "first_statuses": first,
        "duplicate_statuses": again,
    }


if __name__ == "__main__":
    _serve_fake_stripe(int(sys.argv[1]), sys.argv[2])
