"""Every forged, tampered or misused access token is refused with 401."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from freezegun import freeze_time
from httpx import AsyncClient
from jose import jwt

from app.core.config import Settings
from app.core.security import InvalidToken, TokenCodec
from tests.factories import Factory, Member


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(settings: Settings, member: Member, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(member.id),
        "role": "reader",
        "sid": "s" * 32,
        "typ": "access",
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "iat_ms": now * 1000,
        "nbf": now,
        "exp": now + 600,
        "jti": "j" * 32,
    }
    for key, value in changes.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _hs256(payload: dict[str, Any], key: str | bytes) -> str:
    """Sign by hand, so keys jose itself refuses (PEM, SSH) can still be tried as HMAC secrets."""
    import hashlib
    import hmac

    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps(payload).encode())
    secret = key.encode() if isinstance(key, str) else key
    signature = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def _public_keys() -> dict[str, bytes]:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return {
        "pem": rsa_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "openssh": ec_key.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "der": rsa_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
    }


Forger = Callable[[Settings, Member], str]

FORGERIES: dict[str, Forger] = {
    "alg_none": lambda s, m: (
        _b64(b'{"alg":"none","typ":"JWT"}') + "." + _b64(json.dumps(_claims(s, m)).encode()) + "."
    ),
    "other_key": lambda s, m: jwt.encode(_claims(s, m), "another-secret-" + "x" * 32, "HS256"),
    "empty_secret": lambda s, m: _hs256(_claims(s, m), b""),
    "hs512_when_hs256_pinned": lambda s, m: jwt.encode(_claims(s, m), s.jwt_secret, "HS512"),
    "wrong_audience": lambda s, m: jwt.encode(_claims(s, m, aud="other-api"), s.jwt_secret),
    "missing_audience": lambda s, m: jwt.encode(_claims(s, m, aud=None), s.jwt_secret),
    "wrong_issuer": lambda s, m: jwt.encode(_claims(s, m, iss="someone-else"), s.jwt_secret),
    "expired": lambda s, m: jwt.encode(
        _claims(
            s,
            m,
            exp=int(time.time()) - 60,
            iat=int(time.time()) - 700,
            iat_ms=(int(time.time()) - 700) * 1000,
        ),
        s.jwt_secret,
    ),
    "not_yet_valid": lambda s, m: jwt.encode(
        _claims(s, m, nbf=int(time.time()) + 600), s.jwt_secret
    ),
    "issued_in_future": lambda s, m: jwt.encode(
        _claims(
            s,
            m,
            iat=int(time.time()) + 600,
            iat_ms=(int(time.time()) + 600) * 1000,
            exp=int(time.time()) + 1200,
        ),
        s.jwt_secret,
    ),
    "missing_exp": lambda s, m: jwt.encode(_claims(s, m, exp=None), s.jwt_secret),
    "missing_jti": lambda s, m: jwt.encode(_claims(s, m, jti=None), s.jwt_secret),
    "missing_sub": lambda s, m: jwt.encode(_claims(s, m, sub=None), s.jwt_secret),
    "too_long_lifetime": lambda s, m: jwt.encode(
        _claims(s, m, exp=int(time.time()) + 86400 * 30), s.jwt_secret
    ),
    "not_an_access_token": lambda s, m: jwt.encode(_claims(s, m, typ="refresh"), s.jwt_secret),
    "garbage": lambda s, m: "not.a.jwt",
    "binary_garbage": lambda s, m: "%%%%.@@@@.!!!!",
    "refresh_token_as_access": lambda s, m: m.refresh_token,
    "huge": lambda s, m: "a" * 10_000,
}


# The account API checks tokens through the ORM session; the reader pages (archive, article,
# search) through direct reads: both ways must refuse the same forgeries.
TOKEN_PATHS = ["/api/v1/me", "/api/v1/articles", "/api/v1/articles/any-slug", "/api/v1/search?q=x"]


@pytest.mark.parametrize("path", TOKEN_PATHS)
@pytest.mark.parametrize("name", sorted(FORGERIES))
async def test_forged_token_is_refused(
    name: str, path: str, client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    member = await factory.member()
    token = FORGERIES[name](settings, member)
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401, response.text
    assert response.json()["code"] == "token_invalid"


@pytest.mark.parametrize("kind", ["pem", "openssh", "der"])
async def test_hs256_signed_with_public_key_is_refused(
    kind: str, client: AsyncClient, factory: Factory, settings: Settings
) -> None:
    """The CVE-2024-33663 shape: a public key used as the HMAC secret."""
    member = await factory.member()
    key = _public_keys()[kind]
    token = _hs256(_claims(settings, member), key)
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_tampered_payload_is_refused(client: AsyncClient, factory: Factory) -> None:
    member = await factory.member()
    header, payload, signature = member.token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["role"] = "admin"
    forged = ".".join([header, _b64(json.dumps(claims).encode()), signature])
    response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


async def test_genuine_token_is_accepted(client: AsyncClient, factory: Factory) -> None:
    member = await factory.member()
    response = await client.get("/api/v1/me", headers=member.headers)
    assert response.status_code == 200
    assert response.json()["email"] == member.user.email


async def test_access_token_is_not_a_refresh_token(client: AsyncClient, factory: Factory) -> None:
    member = await factory.member()
    response = await client.post("/api/v1/auth/refresh", json={"refresh_token": member.token})
    assert response.status_code in (401, 422)


@pytest.mark.parametrize("path", TOKEN_PATHS)
@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer    ", "Token xyz"])
async def test_malformed_authorization_header_is_401(
    client: AsyncClient, header: str, path: str
) -> None:
    response = await client.get(path, headers={"Authorization": header})
    assert response.status_code == 401


def test_a_remembered_token_still_expires(settings: Settings) -> None:
    """Verified tokens are remembered to skip re-checking signatures, never past their exp."""
    codec = TokenCodec(settings)
    start = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    with freeze_time(start):
        token = codec.issue(user_id=7, role="reader", session_id="s" * 32, now=start)
        assert codec.verify(token).user_id == 7
        assert codec.verify(token).user_id == 7  # from the memo
    later = start + timedelta(minutes=settings.access_token_minutes, seconds=1)
    with freeze_time(later + timedelta(seconds=settings.jwt_leeway_seconds)):
        with pytest.raises(InvalidToken):
            codec.verify(token)
        with pytest.raises(InvalidToken):
            codec.verify(token)  # and not remembered as good afterwards
