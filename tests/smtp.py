"""A real SMTP server (aiosmtpd) for tests, with switchable failure modes."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


def free_ports(count: int) -> list[int]:
    """Give back `count` distinct free loopback ports (all held open while choosing)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [int(sock.getsockname()[1]) for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def free_port() -> int:
    return free_ports(1)[0]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class SinkHandler:
    """Stores what arrives; `refuse` maps an address to an SMTP reply to give instead."""

    messages: list[Received] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)
    refuse_all: str | None = None
    # Addresses whose message is accepted but whose connection drops before the reply.
    drop_after_data: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.refuse_all:
            return self.refuse_all
        reply = self.refuse.get(address.lower())
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or envelope.content or b""
        assert isinstance(raw, bytes)
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed))
        dropping = [r for r in envelope.rcpt_tos if r.lower() in self.drop_after_data]
        if dropping:
            for rcpt in dropping:
                self.drop_after_data.discard(rcpt.lower())
            assert server.transport is not None
            server.transport.close()
        return "250 Message accepted"

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
        self.refuse.clear()
        self.refuse_all = None
        self.drop_after_data.clear()

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [r.message for r in self.messages if address in r.rcpt_tos]


class SmtpSink:
    """An aiosmtpd server on a free loopback port."""

    def __init__(self) -> None:
        self.handler = SinkHandler()
        self.port = free_port()
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def restart(self) -> None:
        """Start again on the same port (a Controller cannot be restarted, so make a new one)."""
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def count(self) -> int:
        with self.handler.lock:
            return len(self.handler.messages)
