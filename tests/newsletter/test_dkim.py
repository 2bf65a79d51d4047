"""DKIM: with a key configured, newsletter mail is signed and the signature verifies."""

from __future__ import annotations

import base64
from email.message import EmailMessage
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from app.core.config import Settings
from app.newsletter.dkim import sign_message


def test_signed_message_verifies_against_the_published_key(
    settings: Settings, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    public = base64.b64encode(
        key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    ).decode()
    configured = settings.model_copy(
        update={
            "dkim_key_path": tmp_path / "dkim.pem",
            "dkim_selector": "bs",
            "dkim_domain": "broadsheet.example",
        }
    )
    message = EmailMessage()
    message["From"] = "news@broadsheet.example"
    message["To"] = "reader@example.com"
    message["Subject"] = "Signed"
    message["Message-ID"] = "<issue-1.rcpt-1@broadsheet.example>"
    message.set_content("Hello")
    raw = sign_message(message, configured)
    assert raw.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"bs._domainkey.broadsheet.example."
        return f"v=DKIM1; k=rsa; p={public}".encode()

    assert dkim.verify(raw, dnsfunc=dns)
    assert not dkim.verify(raw.replace(b"Hello", b"Hullo"), dnsfunc=dns)
    assert sign_message(message, settings) == message.as_bytes()  # no key: unsigned
