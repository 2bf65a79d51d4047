"""The reader's own account: profile changes, re-authentication, export, deletion."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.accounts.models import Consent, EmailToken, RefreshToken, User
from tests.conftest import token_from_mail
from tests.factories import Factory
from tests.smtp import SmtpSink


@pytest.mark.parametrize(
    "field",
    [
        {"role": "admin"},
        {"email_verified": True},
        {"id": 999},
        {"disabled": False},
        {"subscription_status": "active"},
        {"stripe_customer_id": "cus_x"},
    ],
)
async def test_mass_assignment_is_refused_and_changes_nothing(
    client: AsyncClient, app: FastAPI, factory: Factory, field: dict[str, object]
) -> None:
    member = await factory.member()
    response = await client.patch("/api/v1/me", headers=member.headers, json=field)
    assert response.status_code == 422
    async with app.state.db.session() as session:
        user = await session.get(User, member.id)
    assert user is not None
    assert user.role == "reader" and user.id == member.id


async def test_display_name_changes_without_reauth(client: AsyncClient, factory: Factory) -> None:
    member = await factory.member()
    response = await client.patch(
        "/api/v1/me", headers=member.headers, json={"display_name": "Zed"}
    )
    assert response.status_code == 200
    assert response.json()["display_name"] == "Zed"


async def test_password_change_needs_current_password(
    client: AsyncClient, factory: Factory
) -> None:
    member = await factory.member()
    assert (await client.get("/api/v1/articles", headers=member.headers)).status_code == 200
    refused = await client.patch(
        "/api/v1/me", headers=member.headers, json={"new_password": "another good password"}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "reauthentication_required"
    wrong = await client.patch(
        "/api/v1/me",
        headers=member.headers,
        json={"new_password": "another good password", "current_password": "not it at all"},
    )
    assert wrong.status_code == 403
    ok = await client.patch(
        "/api/v1/me",
        headers=member.headers,
        json={"new_password": "another good password", "current_password": member.password},
    )
    assert ok.status_code == 200
    # The change voids every earlier access token, on the reader pages too.
    assert (await client.get("/api/v1/articles", headers=member.headers)).status_code == 401
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": member.user.email, "password": "another good password"},
    )
    assert login.status_code == 200


async def test_email_change_is_confirmed_at_the_new_address(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="old@example.com")
    refused = await client.patch(
        "/api/v1/me", headers=member.headers, json={"email": "new@example.com"}
    )
    assert refused.status_code == 403
    pending = await client.patch(
        "/api/v1/me",
        headers=member.headers,
        json={"email": "new@example.com", "current_password": member.password},
    )
    assert pending.status_code == 200
    assert pending.json()["email"] == "old@example.com"
    token = token_from_mail(smtp_sink, "new@example.com")
    assert (
        await client.post("/api/v1/auth/verify-email", json={"token": token})
    ).status_code == 200
    me = await client.get("/api/v1/me", headers=member.headers)
    assert me.json()["email"] == "new@example.com"


async def test_email_change_with_a_fresh_magic_link(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="ml@example.com")
    await client.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    reauth = token_from_mail(smtp_sink, member.user.email)
    response = await client.patch(
        "/api/v1/me",
        headers=member.headers,
        json={"email": "ml2@example.com", "reauth_token": reauth},
    )
    assert response.status_code == 200
    assert smtp_sink.handler.to("ml2@example.com")


async def test_another_users_magic_link_does_not_reauthenticate(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    alice = await factory.member(email="alice@example.com")
    bob = await factory.member(email="bob@example.com")
    await client.post("/api/v1/auth/magic-link", json={"email": bob.user.email})
    bobs = token_from_mail(smtp_sink, bob.user.email)
    response = await client.patch(
        "/api/v1/me", headers=alice.headers, json={"email": "a2@example.com", "reauth_token": bobs}
    )
    assert response.status_code == 403


async def test_export_contains_the_users_data(client: AsyncClient) -> None:
    signed = await client.post(
        "/api/v1/auth/signup",
        json={
            "email": "exp@example.com",
            "password": "export password!",
            "accept_terms": True,
            "display_name": "Exporter",
        },
    )
    headers = {"Authorization": f"Bearer {signed.json()['access_token']}"}
    export = await client.get("/api/v1/me/export", headers=headers)
    assert export.status_code == 200
    data = export.json()
    assert data["profile"]["email"] == "exp@example.com"
    assert data["profile"]["display_name"] == "Exporter"
    assert {c["document"] for c in data["consents"]} == {"terms", "privacy"}
    assert len(data["sessions"]) == 1
    assert "password_hash" not in export.text
    assert export.headers["cache-control"] == "private, no-store"


async def test_delete_needs_password_and_erases_personal_data(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    member = await factory.member(email="gone@example.com", name="Gone Person")
    refused = await client.request("DELETE", "/api/v1/me", headers=member.headers, json={})
    assert refused.status_code == 403
    done = await client.request(
        "DELETE", "/api/v1/me", headers=member.headers, json={"password": member.password}
    )
    assert done.status_code == 204
    assert (await client.get("/api/v1/me", headers=member.headers)).status_code == 401
    assert (await client.get("/api/v1/articles/x", headers=member.headers)).status_code == 401
    refresh = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": member.refresh_token}
    )
    assert refresh.status_code == 401
    login = await client.post(
        "/api/v1/auth/login", json={"email": "gone@example.com", "password": member.password}
    )
    assert login.status_code == 401
    async with app.state.db.session() as session:
        user = await session.get(User, member.id)
        assert user is not None
        assert "gone" not in user.email and user.display_name == "" and user.password_hash is None
        assert user.deleted_at is not None
        for model in (Consent, RefreshToken, EmailToken):
            rows = (await session.exec(select(model).where(model.user_id == member.id))).all()
            assert rows == []
    # The address is free to sign up again.
    again = await client.post(
        "/api/v1/auth/signup",
        json={"email": "gone@example.com", "password": "a new life password", "accept_terms": True},
    )
    assert again.status_code == 201
