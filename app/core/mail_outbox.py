"""The transactional mail outbox: sign-in links, verifications, receipts and notices are rows
written in the same transaction as the change that causes them, and the worker sends them
with retries. A process killed right after answering still sends its mail, once; a change
that rolls back sends none.

A row is either a finished message (`enqueue`) or a request its builder turns into one in
the worker (`request`): "a sign-in link for this address" costs the request the same work
whether or not the address has an account, and the builder decides what, if anything, goes.
Once sent, a message's body (which may hold a single-use link) is not kept.
"""

from __future__ import annotations

import email
import logging
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, default
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, or_, update
from sqlmodel import Field, SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.db import Database, pk, utcnow
from app.core.mail import Mailer, MailError, build_mailer, stamp
from app.core.types import UTCDateTime

log = logging.getLogger("broadsheet.outbox")

WORKER_ID = f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
BATCH = 50
LEASE = timedelta(minutes=2)
RETRY_BASE_SECONDS = 30.0
MAX_ATTEMPTS = 8

Builder = Callable[[AsyncSession, Settings, dict[str, Any]], Awaitable[EmailMessage | None]]


class OutboxStatus(StrEnum):
    requested = "requested"  # its builder has not written it yet
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    dropped = "dropped"  # its builder found nothing to send


class OutboxMessage(SQLModel, table=True):
    """One transactional email, from its cause to its delivery."""

    __tablename__ = "mail_outbox"
    __table_args__ = (Index("ix_mail_outbox_due", "status", "next_attempt_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=32)
    to_address: str = Field(max_length=320, index=True)
    subject: str = Field(default="", max_length=300)
    payload: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    message: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    status: str = Field(default=OutboxStatus.pending.value, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    worker: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, max_length=500)


def enqueue(session: AsyncSession, settings: Settings, message: EmailMessage) -> None:
    """Add `message` to the outbox in `session`'s transaction; it goes once that commits."""
    session.add(_row(settings, message, kind="message"))


def request(session: AsyncSession, kind: str, to_address: str, payload: dict[str, Any]) -> None:
    """Ask the worker to build and send a `kind` message (see the module docstring)."""
    session.add(
        OutboxMessage(
            kind=kind, to_address=to_address, payload=payload, status=OutboxStatus.requested
        )
    )


def _row(settings: Settings, message: EmailMessage, *, kind: str) -> OutboxMessage:
    # Stamped now, so that every attempt sends the same Message-ID.
    stamp(message, settings)
    return OutboxMessage(
        kind=kind,
        to_address=str(message["To"]),
        subject=str(message.get("Subject", ""))[:300],
        message=message.as_bytes(policy=SMTP),
        status=OutboxStatus.pending,
    )


def delivery_job(builders: Mapping[str, Builder]) -> Callable[[Database, Settings], Awaitable[int]]:
    """Give back the worker job that builds requested messages and sends what is due."""

    async def deliver(db: Database, settings: Settings) -> int:
        work = await build_requested(db, settings, builders)
        return work + await send_due(db, build_mailer(settings))

    return deliver


async def build_requested(db: Database, settings: Settings, builders: Mapping[str, Builder]) -> int:
    """Turn requested rows into messages (or drop them), each with what its builder wrote."""
    async with db.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.status == OutboxStatus.requested.value)
                .order_by(col(OutboxMessage.id))
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        for row in rows:
            builder = builders.get(row.kind)
            built = await builder(session, settings, row.payload or {}) if builder else None
            if built is None:
                row.status = OutboxStatus.dropped.value
            else:
                ready = _row(settings, built, kind=row.kind)
                row.to_address, row.subject, row.message = (
                    ready.to_address,
                    ready.subject,
                    ready.message,
                )
                row.status = OutboxStatus.pending.value
            row.payload = None
            session.add(row)
        return len(rows)


@dataclass(frozen=True)
class _Claimed:
    id: int
    raw: bytes


async def _claim(db: Database, now: datetime) -> list[_Claimed]:
    due = or_(
        (col(OutboxMessage.status) == OutboxStatus.pending.value)
        & (col(OutboxMessage.next_attempt_at) <= now),
        # A worker that died mid-send leaves its rows to the next one after the lease.
        (col(OutboxMessage.status) == OutboxStatus.sending.value)
        & (col(OutboxMessage.lease_until) < now),
    )
    async with db.session() as session:
        rows = (
            await session.exec(
                select(OutboxMessage)
                .where(due)
                .order_by(col(OutboxMessage.id))
                .limit(BATCH)
                .with_for_update(skip_locked=True)
            )
        ).all()
        claimed = []
        for row in rows:
            row.status = OutboxStatus.sending.value
            row.lease_until = now + LEASE
            row.worker = WORKER_ID
            row.attempts += 1
            session.add(row)
            if row.message is not None:
                claimed.append(_Claimed(pk(row.id), row.message))
        return claimed


async def send_due(db: Database, mailer: Mailer) -> int:
    """Send the messages that are due, recording each outcome; give back how many were tried."""
    batch = await _claim(db, utcnow())
    for item in batch:
        parsed = email.message_from_bytes(item.raw, policy=default)
        assert isinstance(parsed, EmailMessage)  # noqa: S101 - the default policy gives one
        try:
            await mailer.send(parsed)
        except MailError as exc:
            await _record_failure(db, item.id, str(exc), permanent=exc.permanent)
        except Exception as exc:  # noqa: BLE001 - any other failure is retried, not lost
            log.exception("transactional mail failed")
            await _record_failure(db, item.id, f"{type(exc).__name__}: {exc}", permanent=False)
        else:
            await _record_sent(db, item.id)
    return len(batch)


async def _record_sent(db: Database, row_id: int) -> None:
    async with db.session() as session:
        await session.exec(
            update(OutboxMessage)
            .where(col(OutboxMessage.id) == row_id, col(OutboxMessage.worker) == WORKER_ID)
            .values(
                status=OutboxStatus.sent.value, sent_at=utcnow(), message=None, lease_until=None
            )
        )


async def _record_failure(db: Database, row_id: int, reason: str, *, permanent: bool) -> None:
    async with db.session() as session:
        row = await session.get(OutboxMessage, row_id)
        if row is None or row.worker != WORKER_ID:
            return
        if permanent or row.attempts >= MAX_ATTEMPTS:
            row.status = OutboxStatus.failed.value
            row.message = None
        else:
            row.status = OutboxStatus.pending.value
            delay = min(RETRY_BASE_SECONDS * 2 ** (row.attempts - 1), 3600.0)
            row.next_attempt_at = utcnow() + timedelta(seconds=delay)
        row.lease_until = None
        row.last_error = reason[:500]
        session.add(row)
