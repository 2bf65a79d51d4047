"""The local gateway (no Stripe key): checkout page, confirmation, portal, all offline. Its
pages answer only the links it issued, and their forms only posts carrying the page's token."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from httpx import ASGITransport, AsyncClient, Response

from app.accounts.models import Role
from app.billing.errors import BadSignature, SignatureMissing
from app.billing.local_gateway import LocalGateway
from app.core.config import Settings
from app.core.security import sign
from app.main import create_app
from tests.conftest import make_settings
from tests.factories import Factory, Member
from tests.smtp import SmtpSink

API = "http://127.0.0.1:8000"


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    return make_settings(database_url, tmp_path / "var", smtp_sink.port)


class Forms(HTMLParser):
    """The POST forms of a page as a browser would submit them: action and hidden fields."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[tuple[str, dict[str, str]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {k: v or "" for k, v in attrs}
        if tag == "form" and found.get("method") == "post":
            self.forms.append((found["action"], {}))
        elif tag == "input" and found.get("type") == "hidden" and self.forms:
            self.forms[-1][1][found["name"]] = found.get("value", "")


def path_of(url: str) -> str:
    assert url.startswith(API), url
    return url.removeprefix(API)


def with_query(path: str, **query: str) -> str:
    base = urlsplit(path).path
    return base + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def altered(signature: str) -> str:
    return ("0" if signature[0] != "0" else "1") + signature[1:]


async def submit(client: AsyncClient, page_path: str, index: int = 0) -> Response:
    page = await client.get(page_path)
    assert page.status_code == 200, page.text
    action, fields = Forms(page.text).forms[index]
    return await client.post(action, data=fields)


async def a_plan(client: AsyncClient, admin: Member, **fields: Any) -> dict[str, Any]:
    body = {"name": "Monthly", "amount": 500, "currency": "eur", "interval": "month", **fields}
    plan = await client.post("/api/v1/admin/plans", headers=admin.headers, json=body)
    assert plan.status_code == 201, plan.text
    return plan.json()  # type: ignore[no-any-return]


async def start(
    client: AsyncClient, member: Member, plan_id: int, key: str | None = None
) -> Response:
    headers = dict(member.headers)
    if key:
        headers["Idempotency-Key"] = key
    return await client.post("/api/v1/billing/checkout", json={"plan_id": plan_id}, headers=headers)


async def checkout_path(client: AsyncClient, member: Member, plan_id: int) -> str:
    started = await start(client, member, plan_id)
    assert started.status_code == 200, started.text
    return path_of(started.json()["checkout_url"])


async def access(client: AsyncClient, member: Member) -> dict[str, Any]:
    mine = await client.get("/api/v1/me/subscription", headers=member.headers)
    return mine.json()  # type: ignore[no-any-return]


async def test_local_checkout_activates_through_the_event_path(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    plan = await a_plan(client, admin)
    assert plan["stripe_price_id"].startswith("price_local_")
    member = await factory.member()
    path = await checkout_path(client, member, plan["id"])
    assert path.startswith("/billing/local/checkout/")
    page = await client.get(path)
    assert page.status_code == 200 and "Confirm test payment" in page.text
    assert page.headers["cache-control"] == "no-store"
    confirmed = await submit(client, path)
    assert confirmed.status_code == 303
    assert confirmed.headers["location"].startswith("https://reader.example/account/billing")
    mine = await access(client, member)
    assert mine["access_level"] == "paid" and mine["status"] == "active"
    events = (await client.get("/api/v1/admin/billing/events", headers=admin.headers)).json()
    assert [e["type"] for e in events["items"]] == ["checkout.session.completed"]
    canceled = await client.post("/api/v1/me/subscription/cancel", headers=member.headers)
    assert canceled.json()["cancel_at_period_end"] is True
    portal = await client.post("/api/v1/billing/portal", headers=member.headers)
    listing = await client.get(path_of(portal.json()["portal_url"]))
    assert "ends at period end" in listing.text
    resumed = await submit(client, path_of(portal.json()["portal_url"]))
    assert resumed.status_code == 303
    assert (await client.get(resumed.headers["location"])).status_code == 200
    assert (await access(client, member))["cancel_at_period_end"] is False


async def test_local_pages_404_for_unknown_sessions(client: AsyncClient) -> None:
    assert (await client.get("/billing/local/checkout/cs_nope")).status_code == 404
    assert (await client.post("/billing/local/checkout/cs_nope")).status_code == 404


async def test_a_checkout_answers_only_its_issued_link_and_its_own_form(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    plan = await a_plan(client, admin)
    member, other = await factory.member(), await factory.member()
    issued = await checkout_path(client, member, plan["id"])
    others = await checkout_path(client, other, plan["id"])
    signature = parse_qs(urlsplit(issued).query)["sig"][0]
    foreign = parse_qs(urlsplit(others).query)["sig"][0]
    for query in ({}, {"sig": altered(signature)}, {"sig": foreign}, {"sig": "é"}):
        assert (await client.get(with_query(issued, **query))).status_code == 404, query
        assert (await client.post(with_query(issued, **query))).status_code == 404, query
    action, fields = Forms((await client.get(issued)).text).forms[0]
    _, foreign_fields = Forms((await client.get(others)).text).forms[0]
    # A cross-site form post knows at most the link, never the token inside the page.
    for posted in ({}, {"token": altered(fields["token"])}, foreign_fields):
        refused = await client.post(action, data=posted)
        assert refused.status_code == 403, posted
        assert refused.json()["code"] == "csrf_failed"
    assert (await client.post(with_query(issued), data=fields)).status_code == 404
    assert (await access(client, member))["status"] is None
    events = (await client.get("/api/v1/admin/billing/events", headers=admin.headers)).json()
    assert events["items"] == []
    assert (await client.post(action, data=fields)).status_code == 303
    assert (await access(client, member))["access_level"] == "paid"


async def test_the_portal_answers_only_its_issued_link_and_its_own_form(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    plan = await a_plan(client, admin)
    member, other = await factory.member(), await factory.member()
    for reader in (member, other):
        assert (await submit(client, await checkout_path(client, reader, plan["id"]))).is_redirect
    issued = path_of(
        (await client.post("/api/v1/billing/portal", headers=member.headers)).json()["portal_url"]
    )
    others = path_of(
        (await client.post("/api/v1/billing/portal", headers=other.headers)).json()["portal_url"]
    )
    signature = parse_qs(urlsplit(issued).query)["sig"][0]
    foreign = parse_qs(urlsplit(others).query)["sig"][0]
    action, fields = Forms((await client.get(issued)).text).forms[0]
    assert action.split("?")[0].endswith("/cancel")
    _, foreign_fields = Forms((await client.get(others)).text).forms[0]
    # Knowing the customer id is not enough: the bare, altered or borrowed link is no page.
    for query in ({}, {"sig": altered(signature)}, {"sig": foreign}):
        assert (await client.get(with_query(issued, **query))).status_code == 404, query
        acted = await client.post(with_query(action, **query), data=fields)
        assert acted.status_code == 404, query
    for posted in ({}, {"token": altered(fields["token"])}, foreign_fields):
        refused = await client.post(action, data=posted)
        assert refused.status_code == 403, posted
        assert refused.json()["code"] == "csrf_failed"
    assert (await access(client, member))["cancel_at_period_end"] is False
    done = await client.post(action, data=fields)
    assert done.status_code == 303 and done.headers["location"] == issued
    assert (await access(client, member))["cancel_at_period_end"] is True
    assert (await access(client, other))["cancel_at_period_end"] is False


async def test_fresh_keys_stop_opening_sessions_at_the_default_limit(
    client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    admin = await factory.member(role=Role.admin)
    plan = await a_plan(client, admin)
    member = await factory.member()
    assert settings.checkout_rate_limit == "10/hour"
    statuses = [
        (await start(client, member, plan["id"], uuid.uuid4().hex)).status_code for _ in range(11)
    ]
    assert statuses == [200] * 10 + [429]


async def test_one_key_for_two_plans_gives_two_sessions(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    monthly = await a_plan(client, admin)
    yearly = await a_plan(client, admin, name="Yearly", amount=5000, interval="year")
    member = await factory.member()
    first = (await start(client, member, monthly["id"], "k1")).json()["checkout_url"]
    second = (await start(client, member, yearly["id"], "k1")).json()["checkout_url"]
    assert first != second
    assert "5000" not in (await client.get(path_of(first))).text
    assert "50.00 EUR / year" in (await client.get(path_of(second))).text


def test_the_local_gateway_takes_only_events_it_signed(settings: Settings) -> None:
    gateway = LocalGateway(settings)
    obj = {"id": "sub_local_x", "object": "subscription"}
    body, header = gateway.signed_event("customer.subscription.updated", obj)
    parsed = gateway.parse_webhook(body, header)
    assert (parsed.type, parsed.object) == ("customer.subscription.updated", obj)
    signed_at = int(header.split(",")[0].removeprefix("t="))
    other = LocalGateway(settings.model_copy(update={"jwt_secret": "another-" + "s" * 40}))
    _, foreign = other.signed_event("customer.subscription.updated", obj)
    # Signed as the gateway signs (its key for webhooks), but six minutes ago.
    late = signed_at - 360
    stale = sign(settings.jwt_secret, "local-gateway:webhook", f"{late}.{body.decode()}")
    refused = [
        (body.replace(b"sub_local_x", b"sub_local_y"), header),
        (body, f"t={signed_at},{foreign.split(',')[1]}"),
        (body, f"t={late},v1={stale}"),
        (body, header.split(",")[1]),
        (body, "nonsense"),
    ]
    for sent, signature in refused:
        with pytest.raises(BadSignature):
            gateway.parse_webhook(sent, signature)
    with pytest.raises(SignatureMissing):
        gateway.parse_webhook(body, None)


async def test_stripe_webhooks_are_404_while_the_local_gateway_is_in_use(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    app = create_app(
        make_settings(database_url, tmp_path, smtp_sink.port, stripe_webhook_secret="whsec_x")
    )
    body = b'{"id": "evt_1", "type": "ping", "data": {"object": {}}}'
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        response = await http.post(
            "/api/v1/webhooks/stripe", content=body, headers={"Stripe-Signature": "t=1,v1=00"}
        )
    await app.state.db.dispose()
    assert response.status_code == 404
