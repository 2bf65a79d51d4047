"""Magic links, email verification and password reset: single use, expiring, no enumeration."""

from __future__ import annotations

from datetime import timedelta

from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.accounts.models import Consent, EmailToken, User
from app.core.db import utcnow
from tests.conftest import token_from_mail
from tests.factories import Factory
from tests.smtp import SmtpSink


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    return {k: v for k, v in a.items() if k != "request_id"} == {
        k: v for k, v in b.items() if k != "request_id"
    }


async def test_magic_link_answers_the_same_for_known_and_unknown(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="known@example.com")
    known = await client.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    unknown = await client.post("/api/v1/auth/magic-link", json={"email": "ghost@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert _same(known.json(), unknown.json())
    assert smtp_sink.handler.to("known@example.com")
    assert not smtp_sink.handler.to("ghost@example.com")


async def test_magic_link_signs_in_once(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="magic@example.com")
    await client.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    token = token_from_mail(smtp_sink, member.user.email)
    first = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert first.status_code == 200
    assert first.json()["access_token"]
    second = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert second.status_code == 400
    assert second.json()["code"] == "token_used"


async def test_magic_link_creates_account_with_consent_on_first_use(
    client: AsyncClient, app: FastAPI, smtp_sink: SmtpSink
) -> None:
    await client.post(
        "/api/v1/auth/magic-link", json={"email": "fresh@example.com", "accept_terms": True}
    )
    async with app.state.db.session() as session:
        assert (await session.exec(select(User))).all() == []  # nothing until the link is used
    token = token_from_mail(smtp_sink, "fresh@example.com")
    response = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert response.status_code == 200
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {response.json()['access_token']}"}
    )
    assert me.json()["email"] == "fresh@example.com"
    assert me.json()["email_verified"] is True
    async with app.state.db.session() as session:
        consents = (await session.exec(select(Consent))).all()
    assert {c.source for c in consents} == {"magic_link"}


async def test_magic_link_for_unknown_email_without_terms_sends_nothing(
    client: AsyncClient, smtp_sink: SmtpSink
) -> None:
    response = await client.post("/api/v1/auth/magic-link", json={"email": "nt@example.com"})
    assert response.status_code == 202
    assert not smtp_sink.handler.to("nt@example.com")


async def test_expired_magic_link_is_refused(
    client: AsyncClient, app: FastAPI, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member()
    await client.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    token = token_from_mail(smtp_sink, member.user.email)
    async with app.state.db.session() as session:
        for row in (await session.exec(select(EmailToken))).all():
            row.expires_at = utcnow() - timedelta(seconds=1)
            session.add(row)
    response = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert response.status_code == 400
    assert response.json()["code"] == "token_expired"


async def test_unknown_token_is_400(client: AsyncClient) -> None:
    response = await client.post("/api/v1/auth/magic-link/verify", json={"token": "Z" * 43})
    assert response.status_code == 400
    assert response.json()["code"] == "token_invalid"


async def test_password_reset_changes_password_and_revokes_sessions(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="reset@example.com")
    known = await client.post("/api/v1/auth/password-reset", json={"email": member.user.email})
    unknown = await client.post("/api/v1/auth/password-reset", json={"email": "no@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert _same(known.json(), unknown.json())
    token = token_from_mail(smtp_sink, member.user.email)
    new_password = "a brand new password"
    done = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    )
    assert done.status_code == 200
    # Every earlier session is closed: refresh and access tokens both.
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": member.refresh_token}
    )
    assert refresh.status_code == 401
    assert (await client.get("/api/v1/me", headers=member.headers)).status_code == 401
    old = await client.post(
        "/api/v1/auth/login", json={"email": member.user.email, "password": member.password}
    )
    assert old.status_code == 401
    new = await client.post(
        "/api/v1/auth/login", json={"email": member.user.email, "password": new_password}
    )
    assert new.status_code == 200
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {new.json()['access_token']}"}
    )
    assert me.status_code == 200
    reuse = await client.post(
        "/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new_password}
    )
    assert reuse.status_code == 400
    assert reuse.json()["code"] == "token_used"


async def test_reset_token_cannot_sign_in_as_magic_link(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member()
    await client.post("/api/v1/auth/password-reset", json={"email": member.user.email})
    token = token_from_mail(smtp_sink, member.user.email)
    response = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert response.status_code == 400


async def test_mailed_links_point_at_the_frontend_and_get_consumes_nothing(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member()
    await client.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    message = smtp_sink.handler.to(member.user.email)[-1]
    text = message.get_body(preferencelist=("plain",))
    assert text is not None
    assert "https://reader.example/auth/magic?token=" in text.get_content()
    # The API offers no GET that could consume a token (mail scanners prefetch links).
    token = token_from_mail(smtp_sink, member.user.email)
    probe = await client.get(f"/api/v1/auth/magic-link/verify?token={token}")
    assert probe.status_code == 405
    still_good = await client.post("/api/v1/auth/magic-link/verify", json={"token": token})
    assert still_good.status_code == 200
