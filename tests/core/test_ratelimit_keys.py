"""Rate-limit keys: IPv6 counted per /64, mail limits per mailbox, X-Forwarded-For believed only
from configured proxies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.ratelimit import RateLimiter
from app.main import create_app
from tests.conftest import _wipe, make_settings
from tests.smtp import SmtpSink, free_port


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::1", "2001:db8:1:2::/64"),
        ("fe80::1%eth0", "fe80::/64"),
        ("::ffff:198.51.100.4", "198.51.100.4"),
        ("unknown", "unknown"),
    ],
)
def test_ip_key_is_the_address_for_ipv4_and_the_64_for_ipv6(ip: str, key: str) -> None:
    assert RateLimiter.ip_key(ip) == key


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("victim@example.org", "victim@example.org"),
        ("Victim+1@Example.ORG", "victim@example.org"),
        ("victim+a+b@example.org", "victim@example.org"),
        ("+only@example.org", "+only@example.org"),
        ("not-an-address", "not-an-address"),
    ],
)
def test_mailbox_key_is_lower_case_without_plus_tag(email: str, key: str) -> None:
    assert RateLimiter.mailbox_key(email) == key


@asynccontextmanager
async def _caller(app: FastAPI, ip: str) -> AsyncIterator[AsyncClient]:
    transport = ASGITransport(app=app, client=(ip, 40000))
    async with AsyncClient(transport=transport, base_url="https://api.test") as http:
        yield http


async def _post(app: FastAPI, ip: str, path: str, body: dict[str, object], **headers: str) -> int:
    async with _caller(app, ip) as http:
        return (await http.post(path, json=body, headers=headers)).status_code


MAIL_ENDPOINTS = [
    ("/api/v1/auth/magic-link", {}),
    ("/api/v1/auth/password-reset", {}),
    ("/api/v1/newsletter/subscribe", {"accept_terms": True}),
]


@pytest.mark.parametrize(("path", "extra"), MAIL_ENDPOINTS)
async def test_mail_limit_counts_plus_tags_and_case_as_one_mailbox(
    app: FastAPI, path: str, extra: dict[str, object]
) -> None:
    # Six callers, each with its own address, so only the mailbox key can say no.
    statuses = [
        await _post(
            app, f"198.51.100.{i + 10}", path, {"email": f"Victim+{i}@Example.org", **extra}
        )
        for i in range(6)
    ]
    assert statuses == [202] * 5 + [429]


async def test_ipv6_callers_in_one_64_share_a_budget(app: FastAPI) -> None:
    path = "/api/v1/auth/magic-link"
    statuses = [
        await _post(app, f"2001:db8:77:1::{i + 1:x}", path, {"email": f"six{i}@example.org"})
        for i in range(6)
    ]
    assert statuses == [202] * 5 + [429]
    # The next /64 is someone else.
    assert await _post(app, "2001:db8:77:2::1", path, {"email": "seven@example.org"}) == 202


@pytest.fixture
async def proxied_app(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> AsyncIterator[FastAPI]:
    settings = make_settings(
        database_url,
        tmp_path,
        smtp_sink.port,
        login_rate_limit="3/minute",
        trusted_proxies=1,
        proxy_networks="10.0.0.0/8, fd00:80::/64",
    )
    app = create_app(settings)
    yield app
    await app.state.gateway.close()
    await app.state.db.dispose()
    await _wipe(database_url)


async def _logins(app: FastAPI, peer: str, forwarded: list[str]) -> list[int]:
    return [
        await _post(
            app,
            peer,
            "/api/v1/auth/login",
            {"email": f"who{i}@example.org", "password": "wrong password!"},
            **{"X-Forwarded-For": hop},
        )
        for i, hop in enumerate(forwarded)
    ]


async def test_forwarded_for_from_a_stranger_is_ignored(proxied_app: FastAPI) -> None:
    spoofed = [f"203.0.113.{i}" for i in range(5)]
    assert await _logins(proxied_app, "192.0.2.50", spoofed) == [401, 401, 401, 429, 429]


async def test_forwarded_for_from_a_configured_proxy_names_the_client(
    proxied_app: FastAPI,
) -> None:
    # Behind the proxy every reader is their own client ...
    clients = [f"203.0.113.{i}" for i in range(5)]
    assert await _logins(proxied_app, "10.1.2.3", clients) == [401] * 5
    # ... and only the last hop counts: what the reader wrote before it is theirs to invent.
    chained = [f"198.51.100.{i}, 192.0.2.99" for i in range(5)]
    assert await _logins(proxied_app, "fd00:80::2", chained) == [401, 401, 401, 429, 429]


async def test_a_rate_limit_store_out_of_reach_is_503_not_500(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    """Without its counters no limit holds: the login is refused, as unavailable."""
    dead = f"redis://127.0.0.1:{free_port()}/0"
    app = create_app(make_settings(database_url, tmp_path, smtp_sink.port, rate_limit_storage=dead))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        response = await http.post(
            "/api/v1/auth/login", json={"email": "x@example.com", "password": "wrong password"}
        )
    await app.state.db.dispose()
    assert response.status_code == 503
    assert response.json()["code"] == "rate_limit_unavailable"
