"""Sending email: the one boundary every message goes through, transactional or bulk.

`Mailer.send(message)` sends one finished message. `Mailer.open()` gives a `MailSession` on
one connection with the SMTP steps themselves (MAIL FROM, RCPT TO, DATA, RSET): the
newsletter sender drives them so that its bookkeeping overlaps the next envelope. SMTP for
real mail, .eml files for development, memory for tests of the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import functools
import logging
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import default
from email.utils import formatdate, getaddresses, make_msgid, parseaddr
from typing import Protocol

import aiosmtplib
import anyio

from app.core.config import MailerKind, Settings, SmtpTls
from app.core.private_files import private_dir, write_private

log = logging.getLogger("broadsheet.mail")


class MailError(Exception):
    """Sending failed; `permanent` says whether retrying the same message can ever work.

    `reply_code` is the server's reply code; None means no reply came (refused connection,
    timeout, connection lost), so after DATA the message may or may not have been taken.
    """

    def __init__(self, message: str, *, permanent: bool, reply_code: int | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.reply_code = reply_code


class MailSession(Protocol):
    """The steps of sending over one open connection; each failure is a MailError."""

    async def mail_from(self, sender: str) -> None: ...

    async def rcpt_to(self, recipient: str) -> None: ...

    async def data(self, raw: bytes) -> str:
        """Send the message (wire bytes) to the recipients given; give back the reply."""
        ...

    async def reset(self) -> None:
        """Drop the message under way (after a refusal); never fails."""
        ...


class Mailer(Protocol):
    async def send(self, message: EmailMessage) -> None: ...

    def open(self) -> AbstractAsyncContextManager[MailSession]:
        """Connect; the session closes the connection when the block ends."""
        ...


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


def envelope_sender(settings: Settings) -> str:
    """Give back the bare address of `mail_from`, for MAIL FROM."""
    return settings.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()


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

    @asynccontextmanager
    async def open(self) -> AsyncIterator[MailSession]:
        """A session whose every accepted message becomes one .eml file."""
        yield _FileSession(self)


class _FileSession:
    def __init__(self, mailer: FileMailer) -> None:
        self._mailer = mailer

    # A file holds the message only, as a mail catcher shows it; the envelope is not kept.
    async def mail_from(self, sender: str) -> None:
        del sender

    async def rcpt_to(self, recipient: str) -> None:
        del recipient

    async def data(self, raw: bytes) -> str:
        await self._mailer.send_raw(raw)
        return "written to outbox"

    async def reset(self) -> None:
        return None


# What aiosmtplib raises for a refusal, a lost connection or a timeout.
_SMTP_FAILURES = (aiosmtplib.SMTPException, OSError, TimeoutError)


def _step_error(exc: Exception) -> MailError:
    """The MailError for a failed SMTP step: the reply when there was one."""
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        reply = f"{exc.code} {exc.message}"[:500]
        return MailError(reply, permanent=500 <= exc.code < 600, reply_code=exc.code)
    return MailError(f"{type(exc).__name__}: {exc}"[:500], permanent=False)


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
        except _SMTP_FAILURES as exc:
            raise MailError(str(exc), permanent=False) from exc

    @asynccontextmanager
    async def open(self) -> AsyncIterator[MailSession]:
        """Connect (a failure is a MailError without a reply code); QUIT at the end."""
        client = self.client()
        try:
            await client.connect()
        except _SMTP_FAILURES as exc:
            raise MailError(str(exc), permanent=False) from exc
        try:
            yield _SmtpSession(client)
        finally:
            await _quit(client)


class _SmtpSession:
    def __init__(self, client: aiosmtplib.SMTP) -> None:
        self._client = client

    async def mail_from(self, sender: str) -> None:
        try:
            await self._client.mail(sender)
        except _SMTP_FAILURES as exc:
            raise _step_error(exc) from exc

    async def rcpt_to(self, recipient: str) -> None:
        try:
            await self._client.rcpt(recipient)
        except _SMTP_FAILURES as exc:
            raise _step_error(exc) from exc

    async def data(self, raw: bytes) -> str:
        try:
            response = await self._client.data(raw)
        except _SMTP_FAILURES as exc:
            raise _step_error(exc) from exc
        return f"{response.code} {response.message}"[:500]

    async def reset(self) -> None:
        with contextlib.suppress(*_SMTP_FAILURES):
            await self._client.rset()


async def _quit(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except _SMTP_FAILURES:
        client.close()


@dataclass(frozen=True)
class Envelope:
    """One message a MemoryMailer took: who from, to whom, and its bytes."""

    sender: str
    recipients: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.raw, policy=default)
        if not isinstance(parsed, EmailMessage):
            raise TypeError("the email policy gave back a legacy Message")
        return parsed


TEMPORARY_REFUSAL = "451 4.3.0 Try again later"
PERMANENT_REFUSAL = "550 5.1.1 No such user"


@dataclass
class MemoryMailer:
    """For tests of the rules: keeps every message and its envelope, refuses what it is told
    to (temporarily or permanently), can lose the connection after a message's data, or be
    unreachable. No server, no files."""

    settings: Settings
    sent: list[Envelope] = field(default_factory=list)
    refusals: dict[str, str] = field(default_factory=dict)
    lose_after_data: set[str] = field(default_factory=set)
    unreachable: bool = False
    connections: int = 0

    def refuse(self, address: str, *, permanent: bool, reply: str | None = None) -> None:
        """Refuse `address` at RCPT TO with a 5xx (`permanent`) or 4xx reply until accept()."""
        self.refusals[address.lower()] = reply or (
            PERMANENT_REFUSAL if permanent else TEMPORARY_REFUSAL
        )

    def accept(self, address: str) -> None:
        self.refusals.pop(address.lower(), None)

    def to(self, address: str) -> list[EmailMessage]:
        """Give back the messages that reached `address`, in order."""
        return [e.message for e in self.sent if address in e.recipients]

    def per_address(self) -> Counter[str]:
        return Counter(r for e in self.sent for r in e.recipients)

    async def send(self, message: EmailMessage) -> None:
        stamp(message, self.settings)
        recipients = [
            a for _, a in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))
        ]
        async with self.open() as session:
            await session.mail_from(parseaddr(str(message["From"]))[1])
            for address in recipients:
                await session.rcpt_to(address)
            await session.data(bytes(message))

    @asynccontextmanager
    async def open(self) -> AsyncIterator[MailSession]:
        if self.unreachable:
            raise MailError("Connection refused", permanent=False)
        self.connections += 1
        yield _MemorySession(self)


class _MemorySession:
    def __init__(self, mailer: MemoryMailer) -> None:
        self._mailer = mailer
        self._sender = ""
        self._recipients: list[str] = []

    async def mail_from(self, sender: str) -> None:
        # A real server answers after a round trip: let other tasks run meanwhile.
        await asyncio.sleep(0)
        self._sender, self._recipients = sender, []

    async def rcpt_to(self, recipient: str) -> None:
        await asyncio.sleep(0)
        reply = self._mailer.refusals.get(recipient.lower())
        if reply is not None:
            code = int(reply[:3])
            raise MailError(reply, permanent=500 <= code < 600, reply_code=code)
        self._recipients.append(recipient)

    async def data(self, raw: bytes) -> str:
        if not self._recipients:
            raise MailError("554 5.5.1 No valid recipients", permanent=True, reply_code=554)
        envelope = Envelope(self._sender, tuple(self._recipients), raw)
        self._mailer.sent.append(envelope)
        self._recipients = []
        lost = self._mailer.lose_after_data.intersection(r.lower() for r in envelope.recipients)
        if lost:
            self._mailer.lose_after_data.difference_update(lost)
            raise MailError("SMTPServerDisconnected: Connection lost", permanent=False)
        return "250 Message accepted"

    async def reset(self) -> None:
        self._sender, self._recipients = "", []


def build_mailer(settings: Settings) -> Mailer:
    """Give back the mailer the settings ask for."""
    if settings.mailer is MailerKind.smtp:
        return SmtpMailer(settings)
    return FileMailer(settings)
