"""The send's rules with the in-memory mailer: retries and backoff, suppression, leases taken
over, lost replies, reconnecting, and the development file mailer running the same send."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from app.core.config import Settings
from app.core.db import as_utc, utcnow
from app.core.mail import FileMailer, MemoryMailer
from app.newsletter import jobs, outbox, sender
from app.newsletter.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    NewsletterIssue,
    Subscriber,
    SubscriberStatus,
)
from app.newsletter.outbox import Claimed
from tests.conftest import make_settings
from tests.newsletter.conftest import Mailroom
from tests.smtp import SmtpSink

RETRY_BASE = 60.0


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    # A real backoff, so that a retried delivery is seen waiting; leases as in the other tests.
    return make_settings(
        database_url,
        tmp_path / "var",
        smtp_sink.port,
        newsletter_retry_base_seconds=RETRY_BASE,
        newsletter_lease_seconds=1,
        newsletter_batch_size=50,
        api_url="https://api.broadsheet.example",
    )


async def _delivery(mailroom: Mailroom, email: str) -> Delivery:
    async with mailroom.db.session(write=False) as session:
        row = (await session.exec(select(Delivery).where(Delivery.email == email))).one()
    return row


async def _make_due(mailroom: Mailroom) -> None:
    """Move every waiting delivery's next attempt to now (the backoff has passed)."""
    async with mailroom.db.session() as session:
        await session.exec(update(Delivery).values(next_attempt_at=utcnow()))


async def _started(mailroom: Mailroom, count: int) -> list[str]:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, count)
    await mailroom.send(await mailroom.issue(newsletter))
    return emails


async def test_a_temporary_refusal_is_retried_with_a_growing_backoff_then_sent_once(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, 4)
    mailer = MemoryMailer(mailroom.settings)
    busy = emails[1]
    mailer.refuse(busy, permanent=False)
    delays = []
    for _ in range(2):
        before = utcnow()
        await jobs.deliver(mailroom.db, mailroom.settings, mailer)
        row = await _delivery(mailroom, busy)
        assert row.status == DeliveryStatus.pending.value
        assert row.last_reply == "451 4.3.0 Try again later"
        delays.append((as_utc(row.next_attempt_at) - before).total_seconds())
        # Not due yet: another round leaves it alone.
        await jobs.deliver(mailroom.db, mailroom.settings, mailer)
        assert (await _delivery(mailroom, busy)).attempts == len(delays)
        await _make_due(mailroom)
    # Doubling from the base (the rounds themselves take a moment, not half a minute).
    assert RETRY_BASE - 1 < delays[0] < 1.5 * RETRY_BASE
    assert 2 * RETRY_BASE - 1 < delays[1] < 3 * RETRY_BASE
    mailer.accept(busy)
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    assert mailer.per_address() == dict.fromkeys(emails, 1)
    row = await _delivery(mailroom, busy)
    assert (row.status, row.attempts) == (DeliveryStatus.sent.value, 3)


async def test_a_delivery_refused_on_every_attempt_fails_after_the_last(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, 2)
    mailer = MemoryMailer(mailroom.settings)
    mailer.refuse(emails[0], permanent=False)
    for _ in range(mailroom.settings.newsletter_max_attempts):
        await jobs.deliver(mailroom.db, mailroom.settings, mailer)
        await _make_due(mailroom)
    row = await _delivery(mailroom, emails[0])
    assert row.status == DeliveryStatus.failed.value
    assert row.attempts == mailroom.settings.newsletter_max_attempts
    assert mailer.per_address() == {emails[1]: 1}


async def test_a_permanent_refusal_fails_the_delivery_and_suppresses_the_subscriber(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, 3)
    mailer = MemoryMailer(mailroom.settings)
    gone = emails[2]
    mailer.refuse(gone, permanent=True)
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    await _make_due(mailroom)
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    row = await _delivery(mailroom, gone)
    assert (row.status, row.attempts) == (DeliveryStatus.failed.value, 1)
    async with mailroom.db.session(write=False) as session:
        subscriber = (await session.exec(select(Subscriber).where(Subscriber.email == gone))).one()
    assert subscriber.status == SubscriberStatus.bounced.value
    assert subscriber.bounce_reason == "550 5.1.1 No such user"
    assert mailer.per_address() == {emails[0]: 1, emails[1]: 1}


async def _taken_over(mailroom: Mailroom, count: int, mailer: MemoryMailer) -> list[Claimed]:
    """A slow worker claims every row and stalls past its lease; another one takes them over
    and sends them. Give back the slow worker's batch."""
    slow = await outbox.claim(mailroom.db, mailroom.settings, limit=count, worker="slow")
    async with mailroom.db.session() as session:
        await session.exec(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    return slow


async def _ledger(mailroom: Mailroom) -> list[tuple[str, str | None]]:
    """Each delivery's (status, worker)."""
    async with mailroom.db.session(write=False) as session:
        return list((await session.exec(select(Delivery.status, Delivery.worker))).all())


async def test_a_batch_taken_over_after_its_lease_ran_out_is_never_sent_twice(
    mailroom: Mailroom,
) -> None:
    # More than one look-ahead's rows, fewer than a round's batch.
    emails = await _started(mailroom, 2 * outbox.CHECK_AHEAD - 5)
    mailer = MemoryMailer(mailroom.settings)
    # One reader's server says "later", so the issue is still sending when the slow one wakes.
    mailer.refuse(emails[0], permanent=False)
    slow = await _taken_over(mailroom, len(emails), mailer)
    assert mailer.per_address() == dict.fromkeys(emails[1:], 1)
    assert await sender.send_batch(mailroom.db, mailroom.settings, slow, mailer) == 0
    assert mailer.per_address() == dict.fromkeys(emails[1:], 1)
    assert "slow" not in {worker for _, worker in await _ledger(mailroom)}


async def test_a_worker_waking_after_the_issue_finished_leaves_the_ledger_as_it_is(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, outbox.CHECK_AHEAD + 5)
    mailer = MemoryMailer(mailroom.settings)
    slow = await _taken_over(mailroom, len(emails), mailer)
    async with mailroom.db.session(write=False) as session:
        finished = (await session.exec(select(NewsletterIssue.status))).one()
    assert finished == IssueStatus.sent.value
    assert await sender.send_batch(mailroom.db, mailroom.settings, slow, mailer) == 0
    assert mailer.per_address() == dict.fromkeys(emails, 1)
    # What the other worker sent stays on record as sent (not "skipped: issue stopped").
    assert {status for status, _ in await _ledger(mailroom)} == {DeliveryStatus.sent.value}


async def test_a_reply_lost_after_the_data_is_retried_once_with_the_same_message_id(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, 3)
    mailer = MemoryMailer(mailroom.settings)
    mailer.lose_after_data.add(emails[1])
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    row = await _delivery(mailroom, emails[1])
    assert (row.status, row.unknown_retried) == (DeliveryStatus.unknown.value, False)
    # Lost again on the retry: it is not tried a third time.
    mailer.lose_after_data.add(emails[1])
    for _ in range(3):
        await _make_due(mailroom)
        await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    twice = mailer.to(emails[1])
    assert len(twice) == 2 and twice[0]["Message-ID"] == twice[1]["Message-ID"]
    assert mailer.per_address() == {emails[0]: 1, emails[1]: 2, emails[2]: 1}
    assert (await _delivery(mailroom, emails[1])).unknown_retried


async def test_a_server_closing_with_421_is_reconnected_and_the_rest_go_on(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, 4)
    mailer = MemoryMailer(mailroom.settings)
    mailer.refuse(emails[1], permanent=False, reply="421 4.7.0 Closing, try later")
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    assert mailer.connections == 2
    assert set(mailer.per_address()) == {emails[0], emails[2], emails[3]}
    assert (await _delivery(mailroom, emails[1])).status == DeliveryStatus.pending.value


async def test_an_unreachable_server_leaves_the_batch_queued_for_later(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, 3)
    mailer = MemoryMailer(mailroom.settings)
    mailer.unreachable = True
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    assert not mailer.sent
    rows = [await _delivery(mailroom, e) for e in emails]
    assert {r.status for r in rows} == {DeliveryStatus.pending.value}
    assert {r.last_reply for r in rows} == {"connect: Connection refused"}
    mailer.unreachable = False
    await _make_due(mailroom)
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    assert mailer.per_address() == dict.fromkeys(emails, 1)


async def test_the_file_mailer_runs_the_newsletter_send(mailroom: Mailroom) -> None:
    """Development (`make run`, MAILER=file): each recipient's message is an .eml file."""
    emails = await _started(mailroom, 3)
    mailer = FileMailer(mailroom.settings)
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    files = sorted(mailer.directory.glob("*.eml"))
    assert len(files) == 3
    assert {stat.S_IMODE(f.stat().st_mode) for f in files} == {0o600}
    recipients = {line for f in files for line in f.read_text().splitlines() if line[:3] == "To:"}
    assert recipients == {f"To: {e}" for e in emails}
    rows = [await _delivery(mailroom, e) for e in emails]
    assert {(r.status, r.last_reply) for r in rows} == {
        (DeliveryStatus.sent.value, "written to outbox")
    }


async def test_the_look_ahead_skips_a_reader_who_left_after_the_snapshot(
    mailroom: Mailroom,
) -> None:
    emails = await _started(mailroom, 3)
    async with mailroom.db.session() as session:
        await session.exec(
            update(Subscriber)
            .where(col(Subscriber.email) == emails[0])
            .values(status=SubscriberStatus.unsubscribed.value)
        )
    mailer = MemoryMailer(mailroom.settings)
    await jobs.deliver(mailroom.db, mailroom.settings, mailer)
    assert set(mailer.per_address()) == set(emails[1:])
    row = await _delivery(mailroom, emails[0])
    assert (row.status, row.last_reply) == (
        DeliveryStatus.skipped.value,
        "unsubscribed or suppressed",
    )
