"""Double opt-in holds for every change an anonymous caller asks for (review M4), choices made
before an address is verified start once it is (product review B1), and an unverified
account cannot take over an address's subscription (review L2)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.accounts.models import Consent
from app.newsletter import tokens
from app.newsletter.models import NewsletterSubscription, Subscriber
from tests.conftest import token_from_mail
from tests.newsletter.conftest import Mailroom
from tests.smtp import SmtpSink


async def _lists(app: FastAPI, email: str) -> tuple[str | None, dict[int, bool]]:
    async with app.state.db.session(write=False) as session:
        subscriber = (
            await session.exec(select(Subscriber).where(Subscriber.email == email))
        ).first()
        if subscriber is None:
            return None, {}
        links = await session.exec(
            select(NewsletterSubscription).where(
                NewsletterSubscription.subscriber_id == subscriber.id
            )
        )
        return subscriber.status, {link.newsletter_id: link.active for link in links}


async def _subscribe(client: AsyncClient, email: str, *slugs: str) -> None:
    response = await client.post(
        "/api/v1/newsletter/subscribe",
        json={"email": email, "accept_terms": True, "newsletters": list(slugs)},
    )
    assert response.status_code == 202


async def test_nobody_can_undo_an_unsubscribe_or_add_lists_without_the_owner(
    app: FastAPI, client: AsyncClient, mailroom: Mailroom, smtp_sink: SmtpSink
) -> None:
    daily = await mailroom.newsletter("daily", default_for_signups=False)
    weekly = await mailroom.newsletter("weekly", default_for_signups=False)
    await _subscribe(client, "v@example.com", "daily")
    await client.post(
        "/api/v1/newsletter/confirm", json={"token": token_from_mail(smtp_sink, "v@example.com")}
    )
    async with app.state.db.session() as session:
        link = await session.get(NewsletterSubscription, (1, daily))
        assert link is not None
        link.active = False
        session.add(link)
    async with app.state.db.session(write=False) as session:
        consents_before = len((await session.exec(select(Consent))).all())
    mails_before = len(smtp_sink.handler.to("v@example.com"))
    await _subscribe(client, "v@example.com", "daily", "weekly")
    assert await _lists(app, "v@example.com") == ("active", {daily: False})
    async with app.state.db.session(write=False) as session:
        assert len((await session.exec(select(Consent))).all()) == consents_before
    # The owner is asked, and saying yes applies exactly what was asked for.
    assert len(smtp_sink.handler.to("v@example.com")) == mails_before + 1
    confirm = token_from_mail(smtp_sink, "v@example.com")
    assert (await client.post("/api/v1/newsletter/confirm", json={"token": confirm})).is_success
    assert await _lists(app, "v@example.com") == ("active", {daily: True, weekly: True})


async def test_nothing_new_to_ask_sends_nothing(
    client: AsyncClient, mailroom: Mailroom, smtp_sink: SmtpSink
) -> None:
    await mailroom.newsletter("daily")
    await _subscribe(client, "w@example.com")
    await client.post(
        "/api/v1/newsletter/confirm", json={"token": token_from_mail(smtp_sink, "w@example.com")}
    )
    sent = len(smtp_sink.handler.to("w@example.com"))
    await _subscribe(client, "w@example.com")
    assert len(smtp_sink.handler.to("w@example.com")) == sent


async def _signup(client: AsyncClient, email: str) -> dict[str, str]:
    response = await client.post(
        "/api/v1/auth/signup",
        json={"email": email, "password": "a long password", "accept_terms": True},
    )
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_choices_before_verification_start_once_the_address_is_verified(
    app: FastAPI, client: AsyncClient, mailroom: Mailroom, smtp_sink: SmtpSink
) -> None:
    daily = await mailroom.newsletter("daily")
    headers = await _signup(client, "reader@example.com")
    chosen = await client.patch("/api/v1/me", headers=headers, json={"newsletters": ["daily"]})
    assert chosen.json()["newsletters"] == ["daily"]
    assert chosen.json()["newsletter_status"] == "pending"
    issue = await mailroom.issue(daily)
    assert (await mailroom.send(issue))["recipients"] == 0
    verify = token_from_mail(smtp_sink, "reader@example.com")
    assert (await client.post("/api/v1/auth/verify-email", json={"token": verify})).is_success
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["newsletter_status"] == "active" and me["newsletters"] == ["daily"]
    later = await mailroom.issue(daily)
    assert (await mailroom.send(later))["recipients"] == 1


async def test_an_unverified_account_leaves_the_addresss_subscription_alone(
    app: FastAPI, client: AsyncClient, mailroom: Mailroom, smtp_sink: SmtpSink
) -> None:
    daily = await mailroom.newsletter("daily")
    await mailroom.newsletter("insiders", visibility="members", default_for_signups=False)
    await _subscribe(client, "owner@example.com", "daily")
    await client.post(
        "/api/v1/newsletter/confirm",
        json={"token": token_from_mail(smtp_sink, "owner@example.com")},
    )
    squatter = await _signup(client, "owner@example.com")
    taken = await client.patch("/api/v1/me", headers=squatter, json={"newsletters": ["insiders"]})
    assert taken.status_code == 409 and taken.json()["code"] == "email_not_verified"
    assert await _lists(app, "owner@example.com") == ("active", {daily: True})
    async with app.state.db.session(write=False) as session:
        row = (await session.exec(select(Subscriber))).one()
        assert row.user_id is None


async def test_a_magic_sign_in_makes_the_addresss_subscription_the_accounts(
    app: FastAPI, client: AsyncClient, mailroom: Mailroom, smtp_sink: SmtpSink
) -> None:
    await mailroom.newsletter("daily")
    await _subscribe(client, "box@example.com", "daily")
    await client.post(
        "/api/v1/newsletter/confirm", json={"token": token_from_mail(smtp_sink, "box@example.com")}
    )
    await client.post(
        "/api/v1/auth/magic-link", json={"email": "box@example.com", "accept_terms": True}
    )
    signed_in = await client.post(
        "/api/v1/auth/magic-link/verify",
        json={"token": token_from_mail(smtp_sink, "box@example.com")},
    )
    headers = {"Authorization": f"Bearer {signed_in.json()['access_token']}"}
    me = (await client.get("/api/v1/me", headers=headers)).json()
    assert me["newsletters"] == ["daily"] and me["newsletter_status"] == "active"


async def test_an_old_unsubscribe_link_cannot_reach_a_row_that_reuses_its_id(
    app: FastAPI, client: AsyncClient, mailroom: Mailroom
) -> None:
    """Review I9: SQLite may give a deleted subscriber's id to a new one."""
    daily = await mailroom.newsletter("daily")
    (address,) = await mailroom.subscribers(daily, 1, prefix="newcomer")
    async with app.state.db.session(write=False) as session:
        row = (await session.exec(select(Subscriber))).one()
    assert row.id is not None
    old = tokens.make(
        app.state.settings.jwt_secret,
        subscriber_id=row.id,
        newsletter_id=daily,
        issue_id=1,
        now=row.created_at - timedelta(days=30),
    )
    answer = await client.post(f"/api/v1/newsletter/unsubscribe?token={old}")
    assert answer.status_code == 400
    assert (await _lists(app, address)) == ("active", {daily: True})
