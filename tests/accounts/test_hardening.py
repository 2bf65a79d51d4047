"""The account findings of the security review: pre-account takeover (M1), re-authentication
limits (M2), email change (M3), links that outlive a reset or a move (M9), the owner locked
out by others' failures (L1), cacheable token answers (L13) and links asked for at the same
cost whatever the address (L18)."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from sqlalchemy import func
from sqlmodel import select

from app.accounts.models import EmailToken, Role
from app.core.mail_outbox import OutboxMessage
from app.main import create_app
from tests.conftest import drain_outbox, make_settings, token_from_mail
from tests.factories import Factory
from tests.smtp import SmtpSink

SQUATTER_PASSWORD = "attacker password 1"


def _client(app: FastAPI, ip: str) -> AsyncClient:
    return AsyncClient(
        transport=ASGITransport(app=app, client=(ip, 40000)), base_url="https://api.test"
    )


async def _signup(client: AsyncClient, email: str, password: str) -> str:
    response = await client.post(
        "/api/v1/auth/signup", json={"email": email, "password": password, "accept_terms": True}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


async def _magic_sign_in(client: AsyncClient, sink: SmtpSink, email: str) -> str:
    await client.post("/api/v1/auth/magic-link", json={"email": email})
    verified = await client.post(
        "/api/v1/auth/magic-link/verify", json={"token": token_from_mail(sink, email)}
    )
    assert verified.status_code == 200, verified.text
    return str(verified.json()["access_token"])


async def test_the_owner_proving_the_address_ends_a_squatters_password_and_sessions(
    client: AsyncClient, smtp_sink: SmtpSink
) -> None:
    victim = "victim@example.com"
    squatter = await _signup(client, victim, SQUATTER_PASSWORD)
    await _magic_sign_in(client, smtp_sink, victim)
    login = await client.post(
        "/api/v1/auth/login", json={"email": victim, "password": SQUATTER_PASSWORD}
    )
    assert login.status_code == 401
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {squatter}"})
    assert me.status_code == 401


async def test_a_verified_accounts_password_survives_a_magic_sign_in(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="owner@example.com")
    await _magic_sign_in(client, smtp_sink, member.user.email)
    login = await client.post(
        "/api/v1/auth/login", json={"email": member.user.email, "password": member.password}
    )
    assert login.status_code == 200


async def test_wrong_current_passwords_are_limited(client: AsyncClient, factory: Factory) -> None:
    member = await factory.member()
    guess = {"new_password": "a brand new password", "current_password": "not the password"}
    statuses = [
        (await client.patch("/api/v1/me", headers=member.headers, json=guess)).status_code
        for _ in range(11)
    ]
    assert statuses == [403] * 10 + [429]
    delete = await client.request(
        "DELETE", "/api/v1/me", headers=member.headers, json={"password": member.password}
    )
    assert delete.status_code == 429


async def test_email_change_answers_alike_for_taken_addresses_and_is_limited(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    taken = await factory.member(email="taken@example.com")
    member = await factory.member()
    change = {"current_password": member.password}
    to_taken = await client.patch(
        "/api/v1/me", headers=member.headers, json={**change, "email": taken.user.email}
    )
    to_free = await client.patch(
        "/api/v1/me", headers=member.headers, json={**change, "email": "free@example.com"}
    )
    assert to_taken.status_code == to_free.status_code == 200
    assert not smtp_sink.handler.to(taken.user.email)
    assert smtp_sink.handler.to("free@example.com")
    statuses = [
        (
            await client.patch(
                "/api/v1/me",
                headers=member.headers,
                json={**change, "email": f"stranger+{n}@example.net"},
            )
        ).status_code
        for n in range(6)
    ]
    assert 429 in statuses
    # Tagged addresses share one mailbox's budget.
    assert len(smtp_sink.handler.messages) < 8


async def test_a_password_reset_ends_every_link_sent_before_it(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="resets@example.com")
    await client.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    magic = token_from_mail(smtp_sink, member.user.email)
    await client.post("/api/v1/auth/password-reset", json={"email": member.user.email})
    first_reset = token_from_mail(smtp_sink, member.user.email)
    await client.post("/api/v1/auth/password-reset", json={"email": member.user.email})
    second_reset = token_from_mail(smtp_sink, member.user.email)
    done = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": second_reset, "new_password": "owner's new password"},
    )
    assert done.status_code == 200
    old_magic = await client.post("/api/v1/auth/magic-link/verify", json={"token": magic})
    old_reset = await client.post(
        "/api/v1/auth/password-reset/confirm",
        json={"token": first_reset, "new_password": "attacker's password"},
    )
    assert old_magic.status_code == old_reset.status_code == 400


async def test_a_password_change_ends_outstanding_links(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="changer@example.com")
    await client.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    magic = token_from_mail(smtp_sink, member.user.email)
    changed = await client.patch(
        "/api/v1/me",
        headers=member.headers,
        json={"new_password": "a brand new password", "current_password": member.password},
    )
    assert changed.status_code == 200
    assert (
        await client.post("/api/v1/auth/magic-link/verify", json={"token": magic})
    ).status_code == 400


async def test_an_email_change_ends_old_links_and_tells_the_old_address(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    member = await factory.member(email="old@example.com")
    await client.post("/api/v1/auth/magic-link", json={"email": "old@example.com"})
    old_magic = token_from_mail(smtp_sink, "old@example.com")
    await client.patch(
        "/api/v1/me",
        headers=member.headers,
        json={"email": "new@example.com", "current_password": member.password},
    )
    confirm = token_from_mail(smtp_sink, "new@example.com")
    assert (
        await client.post("/api/v1/auth/verify-email", json={"token": confirm})
    ).status_code == 200
    notices = smtp_sink.handler.to("old@example.com")
    assert notices[-1]["Subject"] == "Your account's email address was changed"
    assert (
        await client.post("/api/v1/auth/magic-link/verify", json={"token": old_magic})
    ).status_code == 400


async def test_others_failures_do_not_lock_the_owner_out(app: FastAPI, factory: Factory) -> None:
    member = await factory.member(email="locked@example.com")
    wrong = {"email": "LOCKED@example.com", "password": "wrong password!!"}
    for n in range(10):
        async with _client(app, f"198.51.100.{n + 1}") as attacker:
            assert (await attacker.post("/api/v1/auth/login", json=wrong)).status_code == 401
    async with _client(app, "198.51.100.1") as attacker:
        again = await attacker.post("/api/v1/auth/login", json=wrong)
        assert again.status_code == 429
        # Even the right password is refused from where failures came.
        right = {"email": member.user.email, "password": member.password}
        assert (await attacker.post("/api/v1/auth/login", json=right)).status_code == 429
    async with _client(app, "203.0.113.50") as owner:
        right = {"email": member.user.email, "password": member.password}
        assert (await owner.post("/api/v1/auth/login", json=right)).status_code == 200


async def test_token_answers_are_never_stored(client: AsyncClient, factory: Factory) -> None:
    member = await factory.member()
    login = await client.post(
        "/api/v1/auth/login", json={"email": member.user.email, "password": member.password}
    )
    assert login.headers["cache-control"] == "no-store"
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": login.json()["refresh_token"]}
    )
    assert refreshed.headers["cache-control"] == "no-store"
    admin = await factory.member(role=Role.admin)
    members = await client.get("/api/v1/admin/members", headers=admin.headers)
    assert "no-store" in members.headers["cache-control"]


async def _count(app: FastAPI, model: type) -> int:
    async with app.state.db.session(write=False) as session:
        return int((await session.exec(select(func.count()).select_from(model))).one())


async def test_asking_for_a_link_does_the_same_work_for_any_address(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink, factory: Factory, app: FastAPI
) -> None:
    """The request writes one outbox row, whatever the address; the worker makes the rest."""
    member = await factory.member(email="known@example.com")
    async with _client(app, "203.0.113.9") as http:
        for path in ("/api/v1/auth/magic-link", "/api/v1/auth/password-reset"):
            before = (await _count(app, OutboxMessage), await _count(app, EmailToken))
            await http.post(path, json={"email": member.user.email})
            known = (await _count(app, OutboxMessage), await _count(app, EmailToken))
            await http.post(path, json={"email": "nobody@example.com"})
            unknown = (await _count(app, OutboxMessage), await _count(app, EmailToken))
            assert known[0] - before[0] == unknown[0] - known[0] == 1
            assert known[1] == before[1] and unknown[1] == known[1]
    await drain_outbox(app)
    assert len(smtp_sink.handler.to(member.user.email)) == 2
    assert not smtp_sink.handler.to("nobody@example.com")


async def test_a_process_killed_after_answering_still_sends_the_link_once(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink, factory: Factory
) -> None:
    member = await factory.member(email="durable@example.com")
    first = create_app(make_settings(database_url, tmp_path / "a", smtp_sink.port))
    async with _client(first, "203.0.113.10") as http:
        answer = await http.post("/api/v1/auth/magic-link", json={"email": member.user.email})
    assert answer.status_code == 202
    # The process goes away before any worker ran: nothing was sent yet.
    await first.state.db.dispose()
    assert not smtp_sink.handler.to(member.user.email)
    second = create_app(make_settings(database_url, tmp_path / "b", smtp_sink.port))
    try:
        await drain_outbox(second)
        await drain_outbox(second)
    finally:
        await second.state.db.dispose()
    assert len(smtp_sink.handler.to(member.user.email)) == 1


async def test_closed_sign_up_closes_password_sign_up_too(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """Review I4: BROADSHEET_SIGNUP_OPEN=false only closed sign-up by magic link."""
    app = create_app(make_settings(database_url, tmp_path, smtp_sink.port, signup_open=False))
    async with _client(app, "203.0.113.20") as http:
        response = await http.post(
            "/api/v1/auth/signup",
            json={"email": "late@example.com", "password": "a long password", "accept_terms": True},
        )
    await app.state.db.dispose()
    assert response.status_code == 403 and response.json()["code"] == "signup_closed"
