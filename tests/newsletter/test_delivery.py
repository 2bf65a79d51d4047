"""Delivery: exactly one message per recipient through real SMTP, whatever fails on the way."""

from __future__ import annotations

import asyncio
from email.utils import parsedate_to_datetime
from typing import Any

import aiosmtplib
import pytest
from sqlalchemy import func, update
from sqlmodel import col, select

from app.core.db import Database
from app.newsletter import jobs, outbox, sender
from app.newsletter.models import (
    Delivery,
    DeliveryStatus,
    NewsletterIssue,
    NewsletterSubscription,
)
from tests.newsletter.conftest import Mailroom
from tests.smtp import SmtpSink


async def test_thousand_recipients_get_exactly_one_well_formed_message(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 1000)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    await mailroom.drain()
    counts = mailroom.per_address()
    assert set(counts) == set(emails) and set(counts.values()) == {1}
    ids = set()
    for received in mailroom.sink.handler.messages:
        message = received.message
        ids.add(message["Message-ID"])
        assert parsedate_to_datetime(message["Date"]) is not None
        assert "news@broadsheet.example" in message["From"]
        assert message["List-Id"] == "The Daily <daily.broadsheet.example>"
        unsubscribe = message["List-Unsubscribe"]
        assert "<https://api.broadsheet.example/api/v1/newsletter/unsubscribe?token=" in unsubscribe
        # No mailto: nothing reads such a mailbox (product review B6).
        assert "mailto:" not in unsubscribe
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert message.get_body(preferencelist=("plain",)) is not None
        assert message.get_body(preferencelist=("html",)) is not None
    assert len(ids) == 1000
    progress = await mailroom.progress(issue)
    assert progress["status"] == "sent" and progress["progress"]["sent"] == 1000


async def test_temporary_refusals_retry_until_everyone_has_one(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 30)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    mailroom.sink.handler.refuse_all = "451 4.3.0 Try again later"
    for _ in range(3):
        await jobs.deliver(mailroom.db, mailroom.settings)
    assert mailroom.sink.count() == 0
    assert (await mailroom.progress(issue))["progress"]["queued"] == 30
    mailroom.sink.handler.refuse_all = None
    await mailroom.drain()
    assert mailroom.per_address() == dict.fromkeys(emails, 1)


async def test_server_stopped_mid_send_then_back(mailroom: Mailroom, smtp_sink: SmtpSink) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 120)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    await jobs.deliver(mailroom.db, mailroom.settings)  # one batch of 50 goes out
    assert mailroom.sink.count() == 50
    smtp_sink.stop()
    try:
        await jobs.deliver(mailroom.db, mailroom.settings)
    finally:
        smtp_sink.restart()
    assert mailroom.sink.count() == 50
    await mailroom.drain()
    assert mailroom.per_address() == dict.fromkeys(emails, 1)


async def test_permanent_failure_fails_and_suppresses_one_address_only(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 10)
    bad = emails[3]
    mailroom.sink.handler.refuse[bad] = "550 5.1.1 No such user"
    first = await mailroom.issue(newsletter)
    await mailroom.send(first)
    await mailroom.drain()
    counts = mailroom.per_address()
    assert bad not in counts and all(counts[e] == 1 for e in emails if e != bad)
    progress = (await mailroom.progress(first))["progress"]
    assert progress["failed"] == 1 and progress["sent"] == 9
    mailroom.sink.handler.refuse.clear()
    second = await mailroom.issue(newsletter)
    sent = await mailroom.send(second)
    assert sent["recipients"] == 9  # the bounced address is suppressed


async def test_lost_reply_after_data_is_retried_once_with_the_same_message_id(
    mailroom: Mailroom,
) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 5)
    mailroom.sink.handler.drop_after_data.add(emails[2])
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    await mailroom.drain()
    counts = mailroom.per_address()
    assert counts[emails[2]] == 2  # the unknown one, at most once more
    assert all(counts[e] == 1 for e in emails if e != emails[2])
    twice = [
        m.message["Message-ID"] for m in mailroom.sink.handler.messages if emails[2] in m.rcpt_tos
    ]
    assert len(set(twice)) == 1


async def test_killed_worker_loses_at_most_the_message_in_flight(
    mailroom: Mailroom, database_url: str
) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 40)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    batch = await outbox.claim(mailroom.db, mailroom.settings, limit=40, worker="doomed")
    task = asyncio.create_task(sender.send_batch(mailroom.db, mailroom.settings, batch))
    while mailroom.sink.count() < 12:
        await asyncio.sleep(0.005)
    task.cancel()
    with __import__("contextlib").suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(1.1)  # the dead worker's lease runs out
    other = Database(mailroom.settings)
    try:
        for _ in range(50):
            if not await jobs.deliver(other, mailroom.settings):
                break
    finally:
        await other.dispose()
    counts = mailroom.per_address()
    # Everyone got it; the stated bound: only the one message in flight may arrive twice.
    assert set(counts) == set(emails)
    assert sum(1 for c in counts.values() if c > 1) <= 1
    assert max(counts.values()) <= 2


async def test_two_workers_share_one_issue_without_duplicates(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 300)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    first, second = Database(mailroom.settings), Database(mailroom.settings)

    async def worker(db: Database) -> None:
        for _ in range(100):
            if not await jobs.deliver(db, mailroom.settings):
                return

    try:
        await asyncio.gather(worker(first), worker(second))
    finally:
        await first.dispose()
        await second.dispose()
    await mailroom.drain()
    assert mailroom.per_address() == dict.fromkeys(emails, 1)
    workers = set()
    async with mailroom.db.session() as session:
        from sqlmodel import select

        from app.newsletter.models import Delivery

        workers = {d.worker for d in (await session.exec(select(Delivery))).all()}
    assert len(workers) >= 1


async def test_unsubscribed_after_snapshot_is_skipped(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 5)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    from sqlmodel import select

    from app.newsletter.models import NewsletterSubscription, Subscriber

    async with mailroom.db.session() as session:
        gone = (await session.exec(select(Subscriber).where(Subscriber.email == emails[0]))).one()
        link = await session.get(NewsletterSubscription, (gone.id, newsletter))
        assert link is not None
        link.active = False
        session.add(link)
    await mailroom.drain()
    assert emails[0] not in mailroom.per_address()
    assert (await mailroom.progress(issue))["progress"]["skipped"] == 1


async def test_rows_another_worker_took_over_are_left_to_it(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 3 * outbox.CHECK_AHEAD)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    batch = await outbox.claim(mailroom.db, mailroom.settings, limit=len(emails), worker="slow")
    # Past the first check's window: rows whose lease ran out and another worker claimed,
    # and a subscriber who left after the claim.
    taken = [item.id for item in batch[outbox.CHECK_AHEAD + 1 :: 2]]
    left = batch[2 * outbox.CHECK_AHEAD + 1]
    assert left.id not in taken
    async with mailroom.db.session() as session:
        await session.exec(
            update(Delivery).where(col(Delivery.id).in_(taken)).values(worker="fast")
        )
        await session.exec(
            update(NewsletterSubscription)
            .where(col(NewsletterSubscription.subscriber_id) == left.subscriber_id)
            .values(active=False)
        )
    sent = await sender.send_batch(mailroom.db, mailroom.settings, batch)
    mine = {item.email for item in batch if item.id not in taken and item is not left}
    assert sent == len(mine)
    assert set(mailroom.per_address()) == mine
    async with mailroom.db.session() as session:
        skipped = await session.get(Delivery, left.id)
        assert skipped is not None and skipped.status == DeliveryStatus.skipped.value
        still_theirs = (
            await session.exec(select(Delivery.status).where(col(Delivery.id).in_(taken)))
        ).all()
    assert set(still_theirs) == {DeliveryStatus.sending.value}


async def test_the_look_ahead_renews_leases_so_another_worker_leaves_those_rows(
    mailroom: Mailroom,
) -> None:
    newsletter = await mailroom.newsletter()
    await mailroom.subscribers(newsletter, 3)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    batch = await outbox.claim(mailroom.db, mailroom.settings, limit=3, worker="slow")
    await asyncio.sleep(1.1)  # the slow worker's leases (1 s here) run out
    writes = mailroom.db.writes()
    try:
        checked = await outbox.renew_and_check(writes, mailroom.settings, batch[:2], newsletter)
    finally:
        await writes.close()
    assert checked.wanted == {batch[0].id: True, batch[1].id: True}
    # The renewed rows stay the slow worker's; only the one it did not renew has lapsed.
    other = await outbox.claim(mailroom.db, mailroom.settings, limit=3, worker="other")
    assert [item.id for item in other] == [batch[2].id]


async def test_double_send_is_409(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    await mailroom.subscribers(newsletter, 3)
    issue = await mailroom.issue(newsletter)
    editor = await mailroom.editor()
    results = await asyncio.gather(
        *(
            mailroom.client.post(f"/api/v1/admin/newsletters/{issue}/send", headers=editor.headers)
            for _ in range(3)
        )
    )
    assert sorted(r.status_code for r in results) == [200, 409, 409]
    await mailroom.drain()
    assert set(mailroom.per_address().values()) == {1}


async def test_pause_and_resume_skip_nobody_and_repeat_nobody(mailroom: Mailroom) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 120)
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    editor = await mailroom.editor()
    await jobs.deliver(mailroom.db, mailroom.settings)
    paused = await mailroom.client.post(
        f"/api/v1/admin/newsletters/{issue}/pause", headers=editor.headers
    )
    assert paused.json()["status"] == "paused"
    for _ in range(3):
        await jobs.deliver(mailroom.db, mailroom.settings)
    assert mailroom.sink.count() == 50
    await mailroom.client.post(f"/api/v1/admin/newsletters/{issue}/resume", headers=editor.headers)
    await mailroom.drain()
    assert mailroom.per_address() == dict.fromkeys(emails, 1)


async def test_send_by_deadline_stops_and_reports(mailroom: Mailroom) -> None:
    from datetime import timedelta

    from app.core.db import utcnow

    newsletter = await mailroom.newsletter()
    await mailroom.subscribers(newsletter, 80)
    issue = await mailroom.issue(newsletter, send_by=(utcnow() + timedelta(hours=1)).isoformat())
    await mailroom.send(issue)
    await jobs.deliver(mailroom.db, mailroom.settings)
    # The deadline passes while the send is stalled (moved, rather than waited for).
    async with mailroom.db.session() as session:
        row = await session.get(NewsletterIssue, issue)
        assert row is not None
        row.send_by = utcnow() - timedelta(seconds=1)
        session.add(row)
    await mailroom.drain()
    state = await mailroom.progress(issue)
    assert state["status"] == "expired"
    assert state["progress"]["sent"] == 50 and state["progress"]["skipped"] == 30
    assert "deadline" in state["note"]
    assert mailroom.sink.count() == 50


async def test_each_send_waits_until_the_previous_one_is_on_record(
    mailroom: Mailroom, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crash bound: a message's data goes to the server only once every earlier message
    is recorded as sent (the write may overlap the envelope, never the data)."""
    newsletter_id = await mailroom.newsletter()
    await mailroom.subscribers(newsletter_id, 30)
    issue_id = await mailroom.issue(newsletter_id)
    await mailroom.send(issue_id)
    real_data = aiosmtplib.SMTP.data
    recorded_at_each_send: list[int] = []

    async def observed(client: aiosmtplib.SMTP, message: Any, **kwargs: Any) -> Any:
        async with mailroom.db.session(write=False) as session:
            sent = await session.exec(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.status == DeliveryStatus.sent.value)
            )
            recorded_at_each_send.append(sent.one())
        return await real_data(client, message, **kwargs)

    monkeypatch.setattr(aiosmtplib.SMTP, "data", observed)
    await mailroom.drain()
    assert recorded_at_each_send == list(range(30))
    assert sum(mailroom.per_address().values()) == 30
