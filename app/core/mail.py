"""Sending email: one small interface (Mailer); SMTP for real mail, .eml files for development."""

from __future__ import annotations

import functools
import logging
import uuid
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol

import aiosmtplib
import anyio

from app.core.config import MailerKind, Settings, SmtpTls
from app.core.private_files import private_dir, write_private

log = logging.getLogger("broadsheet.mail")


class MailError(Exception):
    """Sending failed; `permanent` says whether retrying the same message can ever work."""

    def __init__(self, message: str, *, permanent: bool, reply_code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.reply_code = reply_code


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...


def stamp(message: EmailMessage, settings: Settings) -> EmailMessage:
    """Fill the headers every message needs (From, Date, Message-ID) when the caller has not."""
    if "From" not in message:
        message["From"] = settings.mail_from
    if "Date" not in message:
        message["Date"] = formatdate(localtime=False, usegmt=True)
    if "Message-ID" not in message:
        message["Message-ID"] = make_msgid(domain=_domain(settings.mail_from))
    return message


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1].strip(" >") or "localhost"


class FileMailer:
    """Development mailer: writes each message as an .eml file under `var/outbox/`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.directory = settings.var_dir / "outbox"

    async def send(self, message: EmailMessage) -> None:
        stamp(message, self.settings)
        await self.send_raw(bytes(message))

    async def send_raw(self, raw: bytes) -> None:
        """Write a message that is already wire bytes."""
        # The files hold live sign-in and reset links: for this user's eyes only.
        private_dir(self.directory)
        path = self.directory / f"{uuid.uuid4().hex}.eml"
        await anyio.to_thread.run_sync(functools.partial(write_private, path, raw, exclusive=True))
        log.info("mail written", extra={"path": str(path), "to": "<redacted>"})


class SmtpMailer:
    """Sends through any SMTP server with aiosmtplib; TLS mode and credentials from settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def client(self) -> aiosmtplib.SMTP:
        """Give back an unconnected SMTP client configured from settings."""
        s = self.settings
        return aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            use_tls=s.smtp_tls is SmtpTls.tls,
            start_tls=s.smtp_tls is SmtpTls.starttls,
            username=s.smtp_username or None,
            password=s.smtp_password or None,
            timeout=s.smtp_timeout,
        )

    async def send(self, message: EmailMessage) -> None:
        stamp(message, self.settings)
        client = self.client()
        try:
            async with client:
                await client.send_message(message)
        except aiosmtplib.SMTPResponseException as exc:
            raise MailError(str(exc), permanent=500 <= exc.code < 600, reply_code=exc.code) from exc
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise MailError(str(exc), permanent=False) from exc


def build_mailer(settings: Settings) -> Mailer:
    """Give back the mailer the settings ask for."""
    if settings.mailer is MailerKind.smtp:
        return SmtpMailer(settings)
    return FileMailer(settings)
