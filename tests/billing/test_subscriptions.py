"""Checkout, portal, cancel and resume, comps, payment failures, reconciliation, end to end."""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.accounts.models import Role
from app.billing import service as billing_service
from app.billing.models import BillingCustomer, CheckoutRecord, Subscription
from tests.billing.conftest import Billing, subscription_state
from tests.factories import ArticleFactory, Factory
from tests.smtp import SmtpSink
from tests.stripe_standin import StandIn, event

GATED = "Free lead.\n\n<!-- paywall -->\n\nPAID-ONLY-TEXT here."


async def test_end_to_end_signup_checkout_read_cancel_period_end(
    billing: Billing,
    client: AsyncClient,
    factory: Factory,
    articles: ArticleFactory,
    standin: StandIn,
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, body=GATED, visibility="paid")
    plan = await billing.plan(name="Monthly", amount=900)
    signed = await client.post(
        "/api/v1/auth/signup",
        json={"email": "payer@example.com", "password": "a good password", "accept_terms": True},
    )
    headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    before = (await client.get(f"/api/v1/articles/{article.slug}", headers=headers)).json()
    assert before["content_html"] is None
    assert [p["id"] for p in before["paywall"]["plans"]] == [plan["id"]]
    started = await client.post(
        "/api/v1/billing/checkout",
        json={
            "plan_id": plan["id"],
            "article_slug": article.slug,
            "success_url": "https://reader.example/thanks",
        },
        headers=headers,
    )
    assert started.status_code == 200
    session_id = started.json()["checkout_url"].rsplit("/", 1)[-1]
    checkout = standin.sessions[session_id]
    assert checkout["client_reference_id"] and checkout["allow_promotion_codes"] == "true"
    assert checkout["metadata"]["article_slug"] == article.slug
    paid = standin.complete_checkout(session_id)
    assert (await billing.deliver(event("checkout.session.completed", paid))).status_code == 200
    after = (await client.get(f"/api/v1/articles/{article.slug}", headers=headers)).json()
    assert "PAID-ONLY-TEXT" in after["content_html"]
    again = await client.post(
        "/api/v1/billing/checkout", json={"plan_id": plan["id"]}, headers=headers
    )
    assert again.status_code == 409 and again.json()["code"] == "already_subscribed"
    canceled = await client.post("/api/v1/me/subscription/cancel", headers=headers)
    assert canceled.status_code == 200
    assert canceled.json()["cancel_at_period_end"] is True and canceled.json()["ends_at"]
    still = (await client.get(f"/api/v1/articles/{article.slug}", headers=headers)).json()
    assert "PAID-ONLY-TEXT" in still["content_html"]
    resumed = await client.post("/api/v1/me/subscription/resume", headers=headers)
    assert resumed.json()["cancel_at_period_end"] is False
    # The period ends: Stripe cancels the subscription and tells us.
    standin.client().subscriptions.cancel(paid["subscription"])
    ended = event("customer.subscription.deleted", {"id": paid["subscription"]})
    assert (await billing.deliver(ended)).status_code == 200
    final = (await client.get(f"/api/v1/articles/{article.slug}", headers=headers)).json()
    assert final["content_html"] is None
    assert "PAID-ONLY-TEXT" not in str(final)
    mine = (await client.get("/api/v1/me/subscription", headers=headers)).json()
    assert mine["status"] == "canceled" and mine["access_level"] == "member"


async def test_double_click_makes_one_customer_and_one_session(
    billing: Billing, client: AsyncClient, factory: Factory, app: FastAPI, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    before = len(standin.sessions)
    responses = await asyncio.gather(
        *(
            client.post(
                "/api/v1/billing/checkout", json={"plan_id": plan["id"]}, headers=member.headers
            )
            for _ in range(3)
        )
    )
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len({r.json()["checkout_url"] for r in responses}) == 1
    assert len(standin.sessions) == before + 1
    customer_keys = {
        k for m, p, k in standin.seen_keys if p == "/v1/customers" and str(member.id) in k
    }
    assert customer_keys == {f"broadsheet-customer-{member.id}"}
    async with app.state.db.session() as session:
        links = (
            await session.exec(select(BillingCustomer).where(BillingCustomer.user_id == member.id))
        ).all()
        records = (await session.exec(select(CheckoutRecord))).all()
    assert len(links) == 1 and len(records) == 1


async def test_checkout_refuses_foreign_redirects_and_unknown_plans(
    billing: Billing, client: AsyncClient, factory: Factory
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    evil = await client.post(
        "/api/v1/billing/checkout",
        json={"plan_id": plan["id"], "success_url": "https://evil.example/steal"},
        headers=member.headers,
    )
    assert evil.status_code == 422 and evil.json()["code"] == "redirect_not_allowed"
    missing = await client.post(
        "/api/v1/billing/checkout", json={"plan_id": 99999}, headers=member.headers
    )
    assert missing.status_code == 404
    anonymous = await client.post("/api/v1/billing/checkout", json={"plan_id": plan["id"]})
    assert anonymous.status_code == 401


async def test_portal_link_for_a_customer(
    billing: Billing, client: AsyncClient, factory: Factory
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    none_yet = await client.post("/api/v1/billing/portal", headers=member.headers)
    assert none_yet.status_code == 404
    await billing.subscribe(member, plan)
    portal = await client.post("/api/v1/billing/portal", headers=member.headers)
    assert portal.status_code == 200
    assert portal.json()["portal_url"].startswith("https://billing.stripe.test/")


async def test_plans_are_listed_in_order_and_retired_ones_hidden(
    billing: Billing, client: AsyncClient
) -> None:
    yearly = await billing.plan(name="Yearly", amount=8000, interval="year", sort_order=2)
    monthly = await billing.plan(name="Monthly", amount=800, sort_order=1)
    listed = (await client.get("/api/v1/billing/plans")).json()
    assert [p["id"] for p in listed] == [monthly["id"], yearly["id"]]
    admin = await billing.admin()
    await client.patch(
        f"/api/v1/admin/plans/{yearly['id']}", json={"active": False}, headers=admin.headers
    )
    assert [p["id"] for p in (await client.get("/api/v1/billing/plans")).json()] == [monthly["id"]]


async def test_payment_failed_emails_once_and_past_due_keeps_access_in_grace(
    billing: Billing, client: AsyncClient, factory: Factory, smtp_sink: SmtpSink, app: FastAPI
) -> None:
    plan = await billing.plan()
    member = await factory.member(email="late@example.com")
    paid = await billing.subscribe(member, plan)
    failed = event(
        "invoice.payment_failed",
        {
            "id": "in_fail_1",
            "object": "invoice",
            "customer": paid["customer"],
            "subscription": paid["subscription"],
            "attempt_count": 1,
        },
    )
    assert (await billing.deliver(failed)).status_code == 200
    # Stripe may send a second event about the same attempt: still one email.
    twin = dict(failed, id="evt_twin_of_failed")
    assert (await billing.deliver(twin)).status_code == 200
    mails = smtp_sink.handler.to("late@example.com")
    assert len(mails) == 1
    body = mails[0].get_body(preferencelist=("plain",))
    assert body is not None and "https://reader.example/account/billing" in body.get_content()
    # Simulate Stripe moving the subscription to past_due: access stays during the grace period.
    async with app.state.db.session() as session:
        sub = (await session.exec(select(Subscription))).one()
        from app.billing.provider_state import copy_and_load

        state = subscription_state(
            id=sub.provider_subscription_id,
            customer_id=sub.customer_id,
            status="past_due",
            price_id=plan["stripe_price_id"],
            current_period_end=sub.current_period_end,
        )
        await copy_and_load(session, state, user_id=member.id, provider="stripe", event_id=None)
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["status"] == "past_due" and mine["in_grace_period"] is True
    assert mine["access_level"] == "paid"


async def test_comp_grants_and_revokes_paid_access(
    billing: Billing, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, body=GATED, visibility="paid")
    member = await factory.member()
    admin = await billing.admin()
    granted = await client.post(
        f"/api/v1/admin/members/{member.id}/comp",
        json={"reason": "contributor"},
        headers=admin.headers,
    )
    assert granted.status_code == 201
    page = (await client.get(f"/api/v1/articles/{article.slug}", headers=member.headers)).json()
    assert "PAID-ONLY-TEXT" in page["content_html"]
    assert (await client.get("/api/v1/me/subscription", headers=member.headers)).json()[
        "complimentary"
    ]
    assert (
        await client.delete(f"/api/v1/admin/members/{member.id}/comp", headers=admin.headers)
    ).status_code == 204
    page = (await client.get(f"/api/v1/articles/{article.slug}", headers=member.headers)).json()
    assert page["content_html"] is None
    forbidden = await client.post(
        f"/api/v1/admin/members/{member.id}/comp", json={}, headers=editor.headers
    )
    assert forbidden.status_code == 403


async def test_comp_for_an_unknown_member_or_without_a_grant_is_404(
    billing: Billing, client: AsyncClient, factory: Factory
) -> None:
    admin = await billing.admin()
    member = await factory.member()
    base = "/api/v1/admin/members"
    unknown = await client.post(f"{base}/999999/comp", json={"reason": "x"}, headers=admin.headers)
    assert (unknown.status_code, unknown.json()["code"]) == (404, "member_not_found")
    gone = await client.delete(f"{base}/999999/comp", headers=admin.headers)
    assert (gone.status_code, gone.json()["code"]) == (404, "member_not_found")
    no_grant = await client.delete(f"{base}/{member.id}/comp", headers=admin.headers)
    assert (no_grant.status_code, no_grant.json()["code"]) == (404, "comp_not_found")


async def test_reconcile_repairs_a_missed_webhook(
    billing: Billing, client: AsyncClient, factory: Factory, app: FastAPI, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.subscribe(member, plan)
    standin.client().subscriptions.cancel(paid["subscription"])  # and the webhook never came
    assert (await client.get("/api/v1/me/subscription", headers=member.headers)).json()[
        "status"
    ] == "active"
    async with app.state.db.session() as session:
        report = await billing_service.reconcile(session, app.state.gateway)
    assert any(paid["subscription"] in line and "active -> canceled" in line for line in report)
    mine = (await client.get("/api/v1/me/subscription", headers=member.headers)).json()
    assert mine["status"] == "canceled"
    async with app.state.db.session() as session:
        assert not any(
            paid["subscription"] in line
            for line in await billing_service.reconcile(session, app.state.gateway)
        )


async def test_deleting_the_account_cancels_the_subscription(
    billing: Billing, client: AsyncClient, factory: Factory, standin: StandIn
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.subscribe(member, plan)
    export = (await client.get("/api/v1/me/export", headers=member.headers)).json()
    assert export["subscriptions"][0]["status"] == "active"
    gone = await client.request(
        "DELETE", "/api/v1/me", headers=member.headers, json={"password": member.password}
    )
    assert gone.status_code == 204
    remote = standin.client().subscriptions.retrieve(paid["subscription"])
    assert remote.status == "canceled"


async def test_refund_and_dispute_are_recorded(
    billing: Billing, factory: Factory, app: FastAPI
) -> None:
    plan = await billing.plan()
    member = await factory.member()
    paid = await billing.subscribe(member, plan)
    invoice = {
        "id": "in_refund",
        "object": "invoice",
        "customer": paid["customer"],
        "subscription": paid["subscription"],
        "amount_paid": 800,
        "currency": "usd",
        "charge": "ch_refund",
        "created": int(time.time()),
    }
    await billing.deliver(event("invoice.paid", invoice))
    await billing.deliver(
        event(
            "charge.refunded", {"id": "ch_refund", "invoice": "in_refund", "amount_refunded": 800}
        )
    )
    await billing.deliver(event("charge.dispute.created", {"id": "dp_1", "charge": "ch_refund"}))
    from app.billing.models import Payment

    async with app.state.db.session() as session:
        payment = (await session.exec(select(Payment))).one()
    assert payment.refunded_amount == 800 and payment.disputed is True


async def test_the_paywall_offers_the_plans_on_sale_in_their_public_shape(
    billing: Billing, factory: Factory, articles: ArticleFactory, client: AsyncClient
) -> None:
    """The article page reads plans directly; they must be what /billing/plans shows."""
    await billing.plan(name="Monthly")
    await billing.plan(name="Yearly", interval="year", amount=8000)
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, visibility="paid")
    page = (await client.get(f"/api/v1/articles/{article.slug}")).json()
    on_sale = (await client.get("/api/v1/billing/plans")).json()
    assert [p["name"] for p in on_sale] == ["Monthly", "Yearly"]
    assert page["paywall"]["plans"] == on_sale


async def test_a_plan_put_on_sale_or_withdrawn_reaches_cached_paywalls_at_once(
    app: FastAPI, billing: Billing, factory: Factory, articles: ArticleFactory, client: AsyncClient
) -> None:
    monthly = await billing.plan(name="Monthly")
    editor = await factory.member(role=Role.editor)
    path = f"/api/v1/articles/{(await articles.make(editor, visibility='paid')).slug}"

    async def offered() -> list[str]:
        return [p["name"] for p in (await client.get(path)).json()["paywall"]["plans"]]

    assert await offered() == ["Monthly"]  # now in the cache
    await billing.plan(name="Yearly", interval="year", amount=8000)
    assert await offered() == ["Monthly", "Yearly"]
    withdrawn = await client.patch(
        f"/api/v1/admin/plans/{monthly['id']}",
        json={"active": False},
        headers=(await billing.admin()).headers,
    )
    assert withdrawn.status_code == 200
    assert await offered() == ["Yearly"]
