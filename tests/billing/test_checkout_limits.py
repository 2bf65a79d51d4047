"""Checkout against the Stripe stand-in: new provider sessions per reader are rate limited, and
an Idempotency-Key stands for one set of checkout parameters, never for whatever came first."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from httpx import AsyncClient, Response

from app.core.config import Settings
from tests.billing.conftest import Billing, standin_settings
from tests.factories import Member
from tests.smtp import SmtpSink
from tests.stripe_standin import StandIn

LIMIT = 3


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_sink: SmtpSink, standin: StandIn) -> Settings:
    return standin_settings(
        database_url,
        tmp_path / "var",
        smtp_sink.port,
        standin,
        checkout_rate_limit=f"{LIMIT}/hour",
    )


async def checkout(
    client: AsyncClient, member: Member, key: str | None = None, **body: Any
) -> Response:
    headers = dict(member.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/api/v1/billing/checkout", json=body, headers=headers)


def session_of(response: Response) -> str:
    assert response.status_code == 200, response.text
    return str(response.json()["checkout_url"]).rsplit("/", 1)[-1]


def checkout_keys(standin: StandIn) -> list[str]:
    return [k for m, p, k in standin.seen_keys if m == "POST" and p == "/v1/checkout/sessions"]


async def test_fresh_keys_open_sessions_only_up_to_the_limit(
    billing: Billing, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    reader = await billing.factory.member()
    keys = [uuid.uuid4().hex for _ in range(LIMIT)]
    opened = [session_of(await checkout(client, reader, k, plan_id=plan["id"])) for k in keys]
    assert len(set(opened)) == LIMIT == len(standin.sessions)
    refused = await checkout(client, reader, uuid.uuid4().hex, plan_id=plan["id"])
    assert refused.status_code == 429, refused.text
    assert refused.json()["code"] == "rate_limited"
    assert int(refused.headers["retry-after"]) > 0
    unkeyed = await checkout(client, reader, plan_id=plan["id"])
    assert unkeyed.status_code == 429
    assert len(standin.sessions) == LIMIT
    # A session already opened is answered from our record: no new one, nothing counted.
    assert session_of(await checkout(client, reader, keys[0], plan_id=plan["id"])) == opened[0]
    # The limit is the reader's own.
    other = await billing.factory.member()
    assert session_of(await checkout(client, other, uuid.uuid4().hex, plan_id=plan["id"]))


async def test_one_key_with_another_plan_is_another_session(
    billing: Billing, client: AsyncClient, standin: StandIn
) -> None:
    monthly = await billing.plan(name="Monthly", amount=800)
    yearly = await billing.plan(name="Yearly", amount=8000, interval="year")
    reader = await billing.factory.member()
    first = session_of(await checkout(client, reader, "k1", plan_id=monthly["id"]))
    second = session_of(await checkout(client, reader, "k1", plan_id=yearly["id"]))
    assert first != second
    assert standin.sessions[first]["price"] == monthly["stripe_price_id"]
    assert standin.sessions[second]["price"] == yearly["stripe_price_id"]
    # Stripe refuses a key reused with other parameters: each set got a key of its own.
    assert len(set(checkout_keys(standin))) == 2
    again = session_of(await checkout(client, reader, "k1", plan_id=yearly["id"]))
    assert again == second


@pytest.mark.parametrize(
    "change",
    [
        {"success_url": "https://reader.example/thanks"},
        {"cancel_url": "https://reader.example/maybe-later"},
        {"article_slug": "a-story"},
    ],
    ids=["success_url", "cancel_url", "article_slug"],
)
async def test_one_key_with_other_urls_or_article_is_another_session(
    billing: Billing, client: AsyncClient, standin: StandIn, change: dict[str, str]
) -> None:
    plan = await billing.plan()
    reader = await billing.factory.member()
    plain = session_of(await checkout(client, reader, "k1", plan_id=plan["id"]))
    changed = session_of(await checkout(client, reader, "k1", plan_id=plan["id"], **change))
    assert plain != changed
    if "success_url" in change:
        assert standin.sessions[changed]["success_url"] == change["success_url"]
    if "article_slug" in change:
        assert standin.sessions[changed]["metadata"]["article_slug"] == change["article_slug"]
    assert len(set(checkout_keys(standin))) == 2


async def test_without_a_key_other_parameters_are_another_session(
    billing: Billing, client: AsyncClient, standin: StandIn
) -> None:
    plan = await billing.plan()
    reader = await billing.factory.member()
    one = session_of(await checkout(client, reader, plan_id=plan["id"], article_slug="one"))
    two = session_of(await checkout(client, reader, plan_id=plan["id"], article_slug="two"))
    assert one != two
    assert [standin.sessions[s]["metadata"]["article_slug"] for s in (one, two)] == ["one", "two"]
    repeat = session_of(await checkout(client, reader, plan_id=plan["id"], article_slug="two"))
    assert repeat == two
