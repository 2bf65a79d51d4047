"""Brute-force limits on login, sign-up, magic links and resets answer 429 with Retry-After."""

from __future__ import annotations

from pathlib import Path

from httpx import ASGITransport, AsyncClient

from app.main import create_app
from tests.conftest import make_settings
from tests.factories import Factory
from tests.smtp import SmtpSink


async def test_login_failures_are_limited_per_account_and_answer_429(
    client: AsyncClient, factory: Factory
) -> None:
    member = await factory.member()
    body = {"email": member.user.email, "password": "wrong password!!"}
    statuses = [(await client.post("/api/v1/auth/login", json=body)).status_code for _ in range(10)]
    assert statuses == [401] * 10
    limited = await client.post("/api/v1/auth/login", json=body)
    assert limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) > 0
    # Even the right password waits now: the account is under attack.
    right = await client.post(
        "/api/v1/auth/login", json={"email": member.user.email, "password": member.password}
    )
    assert right.status_code == 429


async def test_login_limit_per_ip_spans_accounts(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    app = create_app(
        make_settings(database_url, tmp_path, smtp_sink.port, login_rate_limit="3/minute")
    )
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        statuses = [
            (
                await http.post(
                    "/api/v1/auth/login",
                    json={"email": f"u{i}@example.com", "password": "wrong password!"},
                )
            ).status_code
            for i in range(5)
        ]
    await app.state.db.dispose()
    assert statuses == [401, 401, 401, 429, 429]


async def test_signup_flood_is_limited(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    app = create_app(
        make_settings(database_url, tmp_path, smtp_sink.port, signup_rate_limit="2/hour")
    )
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        statuses = [
            (
                await http.post(
                    "/api/v1/auth/signup",
                    json={
                        "email": f"s{i}@example.com",
                        "password": "long password!",
                        "accept_terms": True,
                    },
                )
            ).status_code
            for i in range(3)
        ]
    await app.state.db.dispose()
    from tests.conftest import _wipe

    await _wipe(database_url)
    assert statuses == [201, 201, 429]


async def test_magic_link_and_reset_requests_are_limited(client: AsyncClient) -> None:
    body = {"email": "flood@example.com"}
    magic = [
        (await client.post("/api/v1/auth/magic-link", json=body)).status_code for _ in range(6)
    ]
    assert magic == [202] * 5 + [429]
    reset = [
        (await client.post("/api/v1/auth/password-reset", json=body)).status_code for _ in range(6)
    ]
    assert reset == [202] * 5 + [429]
