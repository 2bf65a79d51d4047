"""Optional DKIM signing of outgoing newsletter mail (dkimpy), when a key is configured."""

from __future__ import annotations

from email.message import EmailMessage
from functools import lru_cache
from pathlib import Path

import dkim

from app.core.config import Settings

SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]


@lru_cache(maxsize=4)
def _key(path: str) -> bytes:
    return Path(path).read_bytes()


def sign_message(message: EmailMessage, settings: Settings) -> bytes:
    """Give back the message's bytes, with a DKIM-Signature header when DKIM is configured."""
    return sign_raw(message.as_bytes(), settings)


def sign_raw(raw: bytes, settings: Settings) -> bytes:
    """Give back wire bytes with a DKIM-Signature header prepended when DKIM is configured."""
    if not (settings.dkim_key_path and settings.dkim_selector and settings.dkim_domain):
        return raw
    signature = dkim.sign(
        raw,
        settings.dkim_selector.encode(),
        settings.dkim_domain.encode(),
        _key(str(settings.dkim_key_path)),
        include_headers=SIGNED_HEADERS,
    )
    return bytes(signature) + raw
