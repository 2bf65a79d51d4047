"""The transactional outbox's rules with the in-memory mailer: a refusal for now is retried
after a backoff and the message then goes exactly once; a permanent one is not retried; a
message a dead worker left goes once its lease ends."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import select

from app.core import mail_outbox
from app.core.db import Database, as_utc, utcnow
from app.core.mail import MemoryMailer
from app.core.mail_outbox import OutboxMessage, OutboxStatus

TO = "reader@example.com"


async def _enqueued(app: FastAPI) -> Database:
    db: Database = app.state.db
    message = EmailMessage()
    message["To"] = TO
    message["Subject"] = "Your sign-in link"
    message.set_content("https://reader.example/auth/magic?token=once")
    async with db.session() as session:
        mail_outbox.enqueue(session, app.state.settings, message)
    return db


async def _row(db: Database) -> OutboxMessage:
    async with db.session(write=False) as session:
        return (await session.exec(select(OutboxMessage))).one()


async def _set(db: Database, **values: object) -> None:
    async with db.session() as session:
        await session.exec(update(OutboxMessage).values(**values))


async def test_a_message_refused_for_now_is_retried_after_a_backoff_and_sent_once(
    app: FastAPI,
) -> None:
    db = await _enqueued(app)
    mailer = MemoryMailer(app.state.settings)
    mailer.refuse(TO, permanent=False)
    before = utcnow()
    assert await mail_outbox.send_due(db, mailer) == 1
    row = await _row(db)
    assert (row.status, row.attempts) == (OutboxStatus.pending.value, 1)
    assert row.last_error == "451 4.3.0 Try again later"
    assert as_utc(row.next_attempt_at) >= before + timedelta(seconds=mail_outbox.RETRY_BASE_SECONDS)
    assert await mail_outbox.send_due(db, mailer) == 0  # not due before the backoff ends
    mailer.accept(TO)
    await _set(db, next_attempt_at=utcnow())
    assert await mail_outbox.send_due(db, mailer) == 1
    assert await mail_outbox.send_due(db, mailer) == 0
    (sent,) = mailer.to(TO)
    assert sent["Subject"] == "Your sign-in link"
    row = await _row(db)
    assert (row.status, row.attempts, row.message) == (OutboxStatus.sent.value, 2, None)


async def test_a_permanently_refused_message_fails_without_another_try(app: FastAPI) -> None:
    db = await _enqueued(app)
    mailer = MemoryMailer(app.state.settings)
    mailer.refuse(TO, permanent=True)
    assert await mail_outbox.send_due(db, mailer) == 1
    await _set(db, next_attempt_at=utcnow())
    assert await mail_outbox.send_due(db, mailer) == 0
    row = await _row(db)
    assert (row.status, row.attempts, row.message) == (OutboxStatus.failed.value, 1, None)
    assert not mailer.sent


async def test_a_message_a_dead_worker_left_goes_once_its_lease_ends(app: FastAPI) -> None:
    db = await _enqueued(app)
    mailer = MemoryMailer(app.state.settings)
    # Claimed by a worker that died before recording anything.
    await _set(
        db,
        status=OutboxStatus.sending.value,
        worker="dead",
        lease_until=utcnow() + timedelta(minutes=1),
    )
    assert await mail_outbox.send_due(db, mailer) == 0
    await _set(db, lease_until=utcnow() - timedelta(seconds=1))
    assert await mail_outbox.send_due(db, mailer) == 1
    assert await mail_outbox.send_due(db, mailer) == 0
    assert mailer.per_address() == {TO: 1}
    assert (await _row(db)).status == OutboxStatus.sent.value
