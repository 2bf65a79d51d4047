"""Signed unsubscribe tokens: who, which newsletter, which issue, when; no database lookup."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.core.security import sign

PURPOSE = "newsletter-unsubscribe"
LIFETIME = timedelta(days=365)


class BadToken(ValueError):
    """The token is tampered, malformed or expired."""


@dataclass(frozen=True)
class UnsubscribeToken:
    subscriber_id: int
    newsletter_id: int
    issue_id: int
    issued_at: datetime


def make(
    secret: str,
    *,
    subscriber_id: int,
    newsletter_id: int,
    issue_id: int,
    now: datetime | None = None,
) -> str:
    """Give back a URL-safe token that lets exactly this subscriber leave this newsletter."""
    issued = int((now or datetime.now(UTC)).timestamp())
    body = f"{subscriber_id}.{newsletter_id}.{issue_id}.{issued}"
    encoded = base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")
    return f"{encoded}.{sign(secret, PURPOSE, body)[:32]}"


def read(secret: str, token: str, *, now: datetime | None = None) -> UnsubscribeToken:
    """Give back what a token says, or raise BadToken."""
    encoded, _, signature = token.partition(".")
    if not encoded or len(signature) != 32 or len(token) > 200:
        raise BadToken("malformed")
    try:
        body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        subscriber, newsletter, issue, issued = (int(part) for part in body.split("."))
    except (ValueError, UnicodeDecodeError, binascii.Error) as exc:
        raise BadToken("malformed") from exc
    if not hmac.compare_digest(sign(secret, PURPOSE, body)[:32], signature):
        raise BadToken("bad signature")
    issued_at = datetime.fromtimestamp(issued, UTC)
    if (now or datetime.now(UTC)) - issued_at > LIFETIME:
        raise BadToken("expired")
    return UnsubscribeToken(subscriber, newsletter, issue, issued_at)
