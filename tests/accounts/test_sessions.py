"""Sign-up, login, rotating refresh tokens, logout and cookie mode."""

from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlmodel import select

from app.accounts.models import Consent, User
from tests.conftest import token_from_mail
from tests.factories import Factory
from tests.smtp import SmtpSink

PASSWORD = "a long enough password"


async def signup(client: AsyncClient, email: str = "new@example.com", **extra: object) -> dict:  # type: ignore[type-arg]
    body = {"email": email, "password": PASSWORD, "accept_terms": True, **extra}
    response = await client.post("/api/v1/auth/signup", json=body)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


async def test_signup_records_consent_and_sends_verification(
    client: AsyncClient, app: FastAPI, smtp_sink: SmtpSink
) -> None:
    tokens = await signup(client, "Reader@Example.COM", display_name="Ada")
    assert tokens["token_type"] == "bearer" and tokens["refresh_token"]
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["email"] == "reader@example.com"
    assert me.json()["email_verified"] is False
    async with app.state.db.session() as session:
        consents = (await session.exec(select(Consent))).all()
    assert {c.document for c in consents} == {"terms", "privacy"}
    assert all(c.ip == "203.0.113.7" and c.version for c in consents)
    token = token_from_mail(smtp_sink, "reader@example.com")
    verified = await client.post("/api/v1/auth/verify-email", json={"token": token})
    assert verified.status_code == 200
    me = await client.get(
        "/api/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert me.json()["email_verified"] is True


async def test_signup_without_terms_is_refused_and_writes_nothing(
    client: AsyncClient, app: FastAPI
) -> None:
    response = await client.post(
        "/api/v1/auth/signup", json={"email": "x@example.com", "password": PASSWORD}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "terms_not_accepted"
    async with app.state.db.session() as session:
        assert (await session.exec(select(User))).all() == []


async def test_signup_with_taken_email_is_refused_case_insensitively(client: AsyncClient) -> None:
    await signup(client, "taken@example.com")
    response = await client.post(
        "/api/v1/auth/signup",
        json={"email": "TAKEN@example.com", "password": PASSWORD, "accept_terms": True},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "email_unavailable"


@pytest.mark.parametrize(
    "password", ["p" * 73, "🔐" * 20, "x" * 1024, "パスワード" * 5, "ab\x00cdefghijkl"]
)
async def test_long_and_unicode_passwords_hash_and_log_in(
    client: AsyncClient, password: str
) -> None:
    email = f"pw{abs(hash(password)) % 10**8}@example.com"
    response = await client.post(
        "/api/v1/auth/signup", json={"email": email, "password": password, "accept_terms": True}
    )
    assert response.status_code == 201, response.text
    login = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert login.status_code == 200


@pytest.mark.parametrize("password", ["x" * 4097, "🔐" * 1100, "short"])
async def test_out_of_range_passwords_are_422(client: AsyncClient, password: str) -> None:
    response = await client.post(
        "/api/v1/auth/signup",
        json={"email": "range@example.com", "password": password, "accept_terms": True},
    )
    assert response.status_code == 422
    assert response.json()["code"] in {"password_invalid", "validation_error"}


async def test_login_failure_looks_the_same_for_unknown_and_known_emails(
    client: AsyncClient, factory: Factory
) -> None:
    member = await factory.member(email="known@example.com")
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": member.user.email, "password": "wrong password!"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "wrong password!"}
    )
    assert wrong.status_code == unknown.status_code == 401
    strip = ("request_id",)
    assert {k: v for k, v in wrong.json().items() if k not in strip} == {
        k: v for k, v in unknown.json().items() if k not in strip
    }


async def test_unknown_email_is_checked_against_a_dummy_hash(app: FastAPI) -> None:
    """The hasher still runs argon2 when there is no stored hash, so timing reveals nothing."""
    hasher = app.state.auth.hasher
    calls: list[str] = []
    original = hasher._hash.verify_and_update

    def spy(password: str, stored: str) -> tuple[bool, str | None]:
        calls.append(stored)
        return original(password, stored)  # type: ignore[no-any-return]

    hasher._hash.verify_and_update = spy
    ok, _ = await hasher.verify("whatever password", None)
    assert ok is False
    assert calls == [hasher._dummy]
    assert calls[0].startswith("$argon2id$")


async def test_refresh_rotates_and_reuse_kills_the_family(client: AsyncClient) -> None:
    first = await signup(client)
    second = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    assert second["refresh_token"] != first["refresh_token"]
    third = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert third.status_code == 200
    reused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert reused.status_code == 401
    assert reused.json()["code"] == "refresh_token_reused"
    # The newest token of the family died with it.
    latest = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": third.json()["refresh_token"]}
    )
    assert latest.status_code == 401


async def test_concurrent_refreshes_with_one_token_exactly_one_wins(app: FastAPI) -> None:
    async def fresh_client() -> AsyncClient:
        return AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test")

    async with await fresh_client() as http:
        tokens = await signup(http)
    clients = [await fresh_client() for _ in range(5)]
    try:
        responses = await asyncio.gather(
            *(
                c.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
                for c in clients
            )
        )
    finally:
        for c in clients:
            await c.aclose()
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) == 1, statuses
    assert set(statuses) <= {200, 401}


async def test_logout_revokes_the_session(client: AsyncClient) -> None:
    tokens = await signup(client)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    out = await client.post("/api/v1/auth/logout", headers=headers)
    assert out.status_code == 204
    again = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status_code == 401


async def test_unknown_refresh_token_is_401(client: AsyncClient) -> None:
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": "A" * 43})
    assert response.status_code == 401
    assert response.json()["code"] == "refresh_token_invalid"


async def test_disabled_account_cannot_sign_in_or_use_tokens(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    member = await factory.member()
    # Used once on a reader page first, so the token is among the remembered verified ones.
    assert (await client.get("/api/v1/articles", headers=member.headers)).status_code == 200
    async with app.state.db.session() as session:
        user = await session.get(User, member.id)
        assert user is not None
        user.disabled = True
        session.add(user)
    login = await client.post(
        "/api/v1/auth/login", json={"email": member.user.email, "password": member.password}
    )
    assert login.status_code == 403
    assert (await client.get("/api/v1/me", headers=member.headers)).status_code == 401
    assert (await client.get("/api/v1/articles", headers=member.headers)).status_code == 401


class TestCookieMode:
    async def test_refresh_cookie_attributes(self, client: AsyncClient) -> None:
        response = await client.post(
            "/api/v1/auth/signup",
            json={
                "email": "c@example.com",
                "password": PASSWORD,
                "accept_terms": True,
                "refresh_in_cookie": True,
            },
        )
        assert response.status_code == 201
        body = response.json()
        assert body["refresh_token"] is None and body["csrf_token"]
        cookies = response.headers.get_list("set-cookie")
        refresh = next(c for c in cookies if c.startswith("broadsheet_refresh="))
        lowered = refresh.lower()
        assert "httponly" in lowered and "secure" in lowered and "samesite=lax" in lowered
        assert "path=/api/v1/auth/refresh" in lowered
        csrf = next(c for c in cookies if c.startswith("broadsheet_csrf="))
        assert "httponly" not in csrf.lower()

    async def test_cookie_refresh_needs_the_csrf_header(self, client: AsyncClient) -> None:
        signed = await client.post(
            "/api/v1/auth/signup",
            json={
                "email": "d@example.com",
                "password": PASSWORD,
                "accept_terms": True,
                "refresh_in_cookie": True,
            },
        )
        csrf = signed.json()["csrf_token"]
        refused = await client.post("/api/v1/auth/refresh")
        assert refused.status_code == 403
        assert refused.json()["code"] == "csrf_failed"
        wrong = await client.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": "nope"})
        assert wrong.status_code == 403
        ok = await client.post("/api/v1/auth/refresh", headers={"X-CSRF-Token": csrf})
        assert ok.status_code == 200, ok.text
        assert ok.json()["access_token"]
        assert ok.json()["refresh_token"] is None

    async def test_a_csrf_cookie_set_by_someone_else_does_not_pass(
        self, client: AsyncClient
    ) -> None:
        """Review I3: any matching cookie-and-header pair passed; now the token is bound to
        the refresh cookie, which a page cannot read."""
        await client.post(
            "/api/v1/auth/signup",
            json={
                "email": "e@example.com",
                "password": PASSWORD,
                "accept_terms": True,
                "refresh_in_cookie": True,
            },
        )
        client.cookies.set("broadsheet_csrf", "attacker-chosen")
        forged = await client.post(
            "/api/v1/auth/refresh", headers={"X-CSRF-Token": "attacker-chosen"}
        )
        assert forged.status_code == 403 and forged.json()["code"] == "csrf_failed"
