"""Sign-up with double opt-in and consent, members' choices, one-click unsubscribe, and the
paywall inside the newsletter."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.accounts.models import Consent, Role
from app.newsletter import tokens
from app.newsletter.models import NewsletterSubscription, Subscriber
from tests.conftest import token_from_mail
from tests.factories import ArticleFactory, Factory
from tests.newsletter.conftest import Mailroom
from tests.smtp import SmtpSink


async def test_subscribe_needs_terms_then_confirms_by_email(
    client: AsyncClient, mailroom: Mailroom, smtp_sink: SmtpSink, app: FastAPI
) -> None:
    await mailroom.newsletter()
    refused = await client.post("/api/v1/newsletter/subscribe", json={"email": "n@example.com"})
    assert refused.status_code == 422 and refused.json()["code"] == "terms_not_accepted"
    response = await client.post(
        "/api/v1/newsletter/subscribe",
        json={"email": "N@Example.com", "accept_terms": True, "source": "article-footer"},
    )
    assert response.status_code == 202
    again = await client.post(
        "/api/v1/newsletter/subscribe", json={"email": "n@example.com", "accept_terms": True}
    )
    assert again.status_code == 202 and again.json() == response.json()
    async with app.state.db.session() as session:
        subscriber = (await session.exec(select(Subscriber))).one()
        assert subscriber.status == "pending" and subscriber.source == "article-footer"
        # Anyone may type the address: consent is on record only once its owner confirms.
        assert not (await session.exec(select(Consent))).all()
    token = token_from_mail(smtp_sink, "n@example.com")
    confirmed = await client.post("/api/v1/newsletter/confirm", json={"token": token})
    assert confirmed.status_code == 200
    async with app.state.db.session() as session:
        assert (await session.exec(select(Subscriber))).one().status == "active"
        consents = (await session.exec(select(Consent).where(Consent.source == "newsletter"))).all()
        assert {c.document for c in consents} == {"terms", "privacy"}
        assert {c.ip for c in consents} == {"203.0.113.7"}


async def test_unconfirmed_subscribers_receive_nothing(
    client: AsyncClient, mailroom: Mailroom
) -> None:
    newsletter = await mailroom.newsletter()
    await client.post(
        "/api/v1/newsletter/subscribe", json={"email": "p@example.com", "accept_terms": True}
    )
    issue = await mailroom.issue(newsletter)
    assert (await mailroom.send(issue))["recipients"] == 0


async def test_members_choose_newsletters_through_me(
    client: AsyncClient, mailroom: Mailroom, factory: Factory
) -> None:
    daily = await mailroom.newsletter("daily")
    await mailroom.newsletter("weekly")
    await mailroom.newsletter("insider", visibility="paid")
    member = await factory.member(email="m@example.com")
    chose = await client.patch(
        "/api/v1/me", headers=member.headers, json={"newsletters": ["daily", "weekly"]}
    )
    assert chose.status_code == 200 and sorted(chose.json()["newsletters"]) == ["daily", "weekly"]
    paid_only = await client.patch(
        "/api/v1/me", headers=member.headers, json={"newsletters": ["insider"]}
    )
    assert paid_only.status_code == 422 and paid_only.json()["code"] == "newsletter_not_open"
    fewer = await client.patch(
        "/api/v1/me", headers=member.headers, json={"newsletters": ["weekly"]}
    )
    assert fewer.json()["newsletters"] == ["weekly"]
    issue = await mailroom.issue(daily)
    assert (await mailroom.send(issue))["recipients"] == 0
    export = (await client.get("/api/v1/me/export", headers=member.headers)).json()
    (address,) = export["newsletters"]
    assert {(x["newsletter"], x["active"]) for x in address["lists"]} == {
        ("daily", False),
        ("weekly", True),
    }


def _unsubscribe_token(mailroom: Mailroom, address: str) -> str:
    message = next(m.message for m in mailroom.sink.handler.messages if address in m.rcpt_tos)
    header = message["List-Unsubscribe"]
    return str(header).split("token=", 1)[1].split(">", 1)[0]


async def test_one_click_unsubscribe_and_what_changes_nothing(
    client: AsyncClient, mailroom: Mailroom, app: FastAPI
) -> None:
    newsletter = await mailroom.newsletter()
    first, second = await mailroom.subscribers(newsletter, 2)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    await mailroom.drain()
    token = _unsubscribe_token(mailroom, first)

    async def active(address: str) -> bool:
        async with app.state.db.session() as session:
            subscriber = (
                await session.exec(select(Subscriber).where(Subscriber.email == address))
            ).one()
            link = await session.get(NewsletterSubscription, (subscriber.id, newsletter))
            assert link is not None
            return bool(link.active)

    page = await client.get(f"/api/v1/newsletter/unsubscribe?token={token}")
    assert page.status_code == 200 and "Unsubscribe" in page.text and await active(first)
    tampered = token[:-2] + ("00" if not token.endswith("00") else "11")
    for bad in (tampered, "x" * 40, token.split(".")[0] + ".abc"):
        response = await client.post(
            f"/api/v1/newsletter/unsubscribe?token={bad}", data={"List-Unsubscribe": "One-Click"}
        )
        assert response.status_code == 400
    secret = app.state.settings.jwt_secret
    parsed = tokens.read(secret, token)
    expired = tokens.make(
        secret,
        subscriber_id=parsed.subscriber_id,
        newsletter_id=newsletter,
        issue_id=issue,
        now=datetime.now(UTC) - timedelta(days=400),
    )
    assert (
        await client.post(
            f"/api/v1/newsletter/unsubscribe?token={expired}",
            data={"List-Unsubscribe": "One-Click"},
        )
    ).status_code == 400
    assert await active(first) and await active(second)
    done = await client.post(
        f"/api/v1/newsletter/unsubscribe?token={token}", data={"List-Unsubscribe": "One-Click"}
    )
    assert done.status_code == 200
    repeat = await client.post(
        f"/api/v1/newsletter/unsubscribe?token={token}", data={"List-Unsubscribe": "One-Click"}
    )
    assert repeat.status_code == 200
    assert not await active(first) and await active(second)
    # Re-subscribing works, once the address's owner confirms it (review M4).
    await client.post("/api/v1/newsletter/subscribe", json={"email": first, "accept_terms": True})
    assert not await active(first)
    confirm = token_from_mail(mailroom.sink, first)
    assert (await client.post("/api/v1/newsletter/confirm", json={"token": confirm})).is_success
    assert await active(first)


SENTINEL_BODIES = {
    "marker": "Free opening of the story.\n\n<!-- paywall -->\n\nNEWSLETTERSENTINEL lives here.",
    # No marker and fewer paragraphs than the preview takes: once sent whole (review H1).
    "short": "Free opening of the story.\n\nA middle part.\n\nNEWSLETTERSENTINEL lives here.",
    "blocks": "Free opening of the story.\n\n```\n" + "NEWSLETTERSENTINEL code\n" * 90 + "```",
}


@pytest.mark.parametrize("kind", list(SENTINEL_BODIES))
async def test_paid_sentinel_never_reaches_a_free_recipient(
    mailroom: Mailroom,
    factory: Factory,
    articles: ArticleFactory,
    client: AsyncClient,
    app: FastAPI,
    kind: str,
) -> None:
    newsletter = await mailroom.newsletter()
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, visibility="paid", body=SENTINEL_BODIES[kind])
    free_emails = await mailroom.subscribers(newsletter, 3, prefix="free")
    paid = await factory.member(role=Role.admin, email="boss@example.com")  # staff read everything
    await client.patch("/api/v1/me", headers=paid.headers, json={"newsletters": ["daily"]})
    issue = await mailroom.issue(newsletter, article_id=article.id, body_md="")
    await mailroom.send(issue)
    await mailroom.drain()
    for received in mailroom.sink.handler.messages:
        # Decoded, so the check holds whatever transfer encoding the parts use.
        raw = str(received.message) + "".join(
            part.get_content()
            for part in received.message.walk()
            if part.get_content_maintype() == "text"
        )
        if set(received.rcpt_tos) & set(free_emails):
            assert "NEWSLETTERSENTINEL" not in raw
            text = received.message.get_body(preferencelist=("plain",))
            assert text is not None and "Subscribe to keep reading" in text.get_content()
        else:
            assert received.rcpt_tos == ["boss@example.com"]
            assert "NEWSLETTERSENTINEL" in raw
    preview = await client.get(
        f"/api/v1/admin/newsletters/{issue}/preview", headers=(await mailroom.editor()).headers
    )
    assert "NEWSLETTERSENTINEL" in preview.json()["paid_html"]
    assert "NEWSLETTERSENTINEL" not in preview.json()["free_html"] + preview.json()["free_text"]


async def test_test_send_goes_to_given_addresses_only(
    mailroom: Mailroom, client: AsyncClient
) -> None:
    newsletter = await mailroom.newsletter()
    await mailroom.subscribers(newsletter, 3)
    issue = await mailroom.issue(newsletter)
    response = await client.post(
        f"/api/v1/admin/newsletters/{issue}/test",
        json={"to": ["qa@example.com"]},
        headers=(await mailroom.editor()).headers,
    )
    assert response.status_code == 202
    assert list(mailroom.per_address()) == ["qa@example.com"]
    assert mailroom.sink.handler.messages[0].message["Subject"] == "[TEST] Today"
    assert (await mailroom.progress(issue))["status"] == "draft"


async def test_readers_cannot_reach_newsletter_admin(client: AsyncClient, factory: Factory) -> None:
    reader = await factory.member()
    author = await factory.member(role=Role.author)
    for member in (reader, author):
        assert (
            await client.get("/api/v1/admin/newsletters", headers=member.headers)
        ).status_code == 403
