"""Tokens and passwords: the only module that imports python-jose or the password hasher.

python-jose checks little by default (any algorithm, no required claims, a missing `aud`
passes even when an audience is given), so every check is decided here, explicitly.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from jose import JWTError, jwt
from jose.exceptions import JOSEError
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from app.core.config import Settings

REQUIRED_CLAIMS = ("sub", "exp", "iat", "iat_ms", "iss", "aud", "jti", "typ")
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
# A JWT is a few hundred bytes; refuse big ones before any parsing or crypto.
MAX_TOKEN_LENGTH = 4096
# Only tokens that passed every check are kept, so the memo cannot be filled by forgeries.
VERIFIED_TOKENS_KEPT = 4096
ALLOWED_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})


class InvalidToken(Exception):
    """The token is not one we issued, or no longer valid; the reason is for logs only."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    role: str
    session_id: str
    issued_at: datetime
    expires_at: datetime
    token_id: str


class TokenCodec:
    """Issues and verifies access JWTs with one pinned algorithm, issuer and audience."""

    def __init__(self, settings: Settings) -> None:
        if settings.jwt_algorithm not in ALLOWED_ALGORITHMS:
            raise ValueError(f"unsupported JWT algorithm {settings.jwt_algorithm!r}")
        self._secret = settings.jwt_secret
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._lifetime = timedelta(minutes=settings.access_token_minutes)
        self._leeway = settings.jwt_leeway_seconds
        self.lifetime_seconds = int(self._lifetime.total_seconds())
        # Tokens already verified, until they expire: a token's signature and claims cannot
        # change, so checking them again on each request only burns time (a fifth of a
        # signed-in article read). Revocation is not cached: callers still read the user.
        self._verified: OrderedDict[str, AccessClaims] = OrderedDict()

    def issue(
        self, *, user_id: int, role: str, session_id: str, now: datetime | None = None
    ) -> str:
        """Give back a signed access token for the user."""
        issued = now or datetime.now(UTC)
        claims: dict[str, Any] = {
            "sub": str(user_id),
            "role": role,
            "sid": session_id,
            "typ": ACCESS_TOKEN_TYPE,
            "iss": self._issuer,
            "aud": self._audience,
            "iat": int(issued.timestamp()),
            # Millisecond issue time: revocation ("tokens before now are void") needs more than
            # whole seconds, or a login right after a password reset would be refused.
            "iat_ms": int(issued.timestamp() * 1000),
            "nbf": int(issued.timestamp()),
            "exp": int((issued + self._lifetime).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return jwt.encode(claims, self._secret, algorithm=self._algorithm)

    def verify(self, token: str) -> AccessClaims:
        """Give back the claims of a valid access token, or raise InvalidToken."""
        known = self._verified.get(token)
        if known is not None:
            if known.expires_at + timedelta(seconds=self._leeway) > datetime.now(UTC):
                return known
            del self._verified[token]
            raise InvalidToken("expired")
        claims = self._verify_fully(token)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_TOKENS_KEPT:
            self._verified.popitem(last=False)
        return claims

    def _verify_fully(self, token: str) -> AccessClaims:
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("empty or oversized token")
        try:
            header = jwt.get_unverified_header(token)
        except (JWTError, JOSEError, ValueError, TypeError) as exc:
            raise InvalidToken("unreadable header") from exc
        if header.get("alg") != self._algorithm:
            raise InvalidToken("algorithm not allowed")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                options={
                    "verify_signature": True,
                    "verify_aud": True,
                    "verify_iat": True,
                    "verify_exp": True,
                    "verify_nbf": True,
                    "verify_iss": True,
                    "verify_sub": True,
                    "verify_jti": True,
                    "verify_at_hash": False,
                    "require_aud": True,
                    "require_iat": True,
                    "require_exp": True,
                    "require_iss": True,
                    "require_sub": True,
                    "require_jti": True,
                    "leeway": self._leeway,
                },
            )
        except (JWTError, JOSEError, ValueError, TypeError, KeyError) as exc:
            raise InvalidToken("signature or claims rejected") from exc
        return self._claims(claims)

    def _claims(self, claims: dict[str, Any]) -> AccessClaims:
        # jose accepts a token with no `aud` even when an audience is given: check presence here.
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        if missing:
            raise InvalidToken(f"missing claims {missing}")
        if claims["typ"] != ACCESS_TOKEN_TYPE or claims["aud"] != self._audience:
            raise InvalidToken("not an access token for this API")
        try:
            user_id = int(claims["sub"])
            issued = datetime.fromtimestamp(int(claims["iat_ms"]) / 1000, UTC)
            expires = datetime.fromtimestamp(int(claims["exp"]), UTC)
        except (TypeError, ValueError, OverflowError, OSError) as exc:
            raise InvalidToken("malformed numeric claims") from exc
        now = datetime.now(UTC)
        if issued > now + timedelta(seconds=self._leeway):
            raise InvalidToken("issued in the future")
        if expires - issued > self._lifetime + timedelta(seconds=self._leeway):
            raise InvalidToken("lifetime longer than we issue")
        role, sid, jti = claims.get("role"), claims.get("sid"), claims["jti"]
        if not isinstance(role, str) or not isinstance(sid, str) or not isinstance(jti, str):
            raise InvalidToken("malformed string claims")
        return AccessClaims(user_id, role, sid, issued, expires, jti)


def new_opaque_token() -> str:
    """Give back a fresh random token (256 bits, URL-safe) for refresh, magic and reset links."""
    return secrets.token_urlsafe(32)


def hash_opaque_token(token: str) -> str:
    """Give back the stored form of an opaque token; high entropy needs no slow hash."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def sign(secret: str, purpose: str, value: str) -> str:
    """Give back an HMAC-SHA256 of `value`, keyed per purpose so signatures never cross uses."""
    key = hmac.new(secret.encode(), purpose.encode(), hashlib.sha256).digest()
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def signature_matches(secret: str, purpose: str, value: str, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, purpose, value), signature)


class PasswordHasher:
    """argon2id hashing, run in a worker thread so the event loop never blocks on it."""

    def __init__(self, settings: Settings) -> None:
        self._hash = PasswordHash(
            (
                Argon2Hasher(
                    time_cost=settings.password_time_cost,
                    memory_cost=settings.password_memory_kib,
                    parallelism=settings.password_parallelism,
                ),
            )
        )
        # Verified against when the account is unknown, so timing does not reveal accounts.
        self._dummy = self._hash.hash(secrets.token_urlsafe(16))

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        """Give back (matches, new hash when the parameters changed); checks a dummy when unset."""
        target = stored or self._dummy
        ok, updated = await anyio.to_thread.run_sync(self._hash.verify_and_update, password, target)
        if stored is None:
            return False, None
        return ok, updated
