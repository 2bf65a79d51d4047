"""The delivery ledger: one `delivery` row per recipient of an issue, and the statements on it.

Start due issues (app/newsletter/recipients.py copies their recipients in) and stop overdue
ones, claim batches under a lease, renew leases while checking who still wants the issue,
write each outcome, close finished issues. At-least-once with a bound: a worker that dies
loses only the one message in flight, which its successor may send again (same Message-ID).
The send itself is app/newsletter/sender.py.
"""

from __future__ import annotations

import functools
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.db import Database, DirectWrites, Query, pk, utcnow
from app.newsletter import issue_mail, recipients, repository, subscribers
from app.newsletter.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    NewsletterIssue,
    SubscriberStatus,
)

WORKER_ID = f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
OPEN = (DeliveryStatus.pending.value, DeliveryStatus.sending.value, DeliveryStatus.unknown.value)
QUEUED = [DeliveryStatus.pending.value, DeliveryStatus.unknown.value]

# The note on a scheduled issue held back because its article is not live.
WAITING_NOTE = "waiting for its article to go live"


async def promote_due(db: Database, settings: Settings) -> int:
    """Start scheduled issues whose time has come; give back how many started.

    One whose article is not live (unpublished, or moved later) stays scheduled with a note
    and starts once the article is live, unless its send-by deadline passes first.
    """
    now = utcnow()
    async with db.session() as session:
        due = (
            await session.exec(
                select(NewsletterIssue)
                .where(
                    NewsletterIssue.status == IssueStatus.scheduled.value,
                    col(NewsletterIssue.scheduled_at) <= now,
                )
                .with_for_update(skip_locked=True)
            )
        ).all()
        started = 0
        for issue in due:
            if await repository.article_wait(session, issue, now) is not None:
                _hold(issue, now)
                session.add(issue)
                continue
            if issue.note == WAITING_NOTE:
                issue.note = "waited for its article to go live"
            await recipients.snapshot(session, issue, settings)
            started += 1
        return started


def _hold(issue: NewsletterIssue, now: datetime) -> None:
    """Keep a due issue from starting while its article is not live."""
    if issue.send_by is not None and issue.send_by < now:
        issue.status = IssueStatus.expired.value
        issue.finished_at = now
        issue.note = "send-by deadline passed while waiting for its article to go live"
    else:
        issue.note = WAITING_NOTE


async def skip_queued(session: AsyncSession, issue_id: int | None, reason: str) -> int:
    """Mark the issue's deliveries not yet sent as skipped; give back how many."""
    result = await session.exec(
        update(Delivery)
        .where(col(Delivery.issue_id) == issue_id, col(Delivery.status).in_(QUEUED))
        .values(status=DeliveryStatus.skipped.value, last_reply=reason)
    )
    return int(result.rowcount)


async def expire_overdue(db: Database) -> int:
    """Stop issues past their send-by deadline: the rest is skipped and reported, not sent late."""
    now = utcnow()
    async with db.session() as session:
        overdue = (
            await session.exec(
                select(NewsletterIssue).where(
                    col(NewsletterIssue.status).in_(
                        [IssueStatus.sending.value, IssueStatus.paused.value]
                    ),
                    col(NewsletterIssue.send_by).is_not(None),
                    col(NewsletterIssue.send_by) < now,
                )
            )
        ).all()
        for issue in overdue:
            skipped = await skip_queued(session, issue.id, "send-by deadline passed")
            issue.status = IssueStatus.expired.value
            issue.finished_at = now
            issue.note = f"stopped at the send-by deadline; {skipped} not sent"
            session.add(issue)
        return len(overdue)


@dataclass(frozen=True)
class Claimed:
    id: int
    issue_id: int
    subscriber_id: int
    email: str
    paid: bool
    member: bool
    tiers: str = ""
    worker: str = WORKER_ID


def _due(now: datetime) -> ColumnElement[bool]:
    """SQL: a delivery that is due: waiting, left by a worker whose lease ran out, or unknown
    and not yet retried."""
    return or_(
        and_(
            col(Delivery.status) == DeliveryStatus.pending.value,
            col(Delivery.next_attempt_at) <= now,
        ),
        and_(col(Delivery.status) == DeliveryStatus.sending.value, col(Delivery.lease_until) < now),
        and_(
            col(Delivery.status) == DeliveryStatus.unknown.value,
            col(Delivery.unknown_retried) == False,  # noqa: E712
            col(Delivery.next_attempt_at) <= now,
        ),
    )


async def claim(
    db: Database, settings: Settings, *, limit: int, worker: str = WORKER_ID
) -> list[Claimed]:
    """Take up to `limit` due deliveries under a lease; concurrent workers never overlap."""
    now = utcnow()
    lease = now + timedelta(seconds=settings.newsletter_lease_seconds)
    async with db.session(inline=True) as session:
        rows = (
            await session.exec(
                select(Delivery)
                .join(NewsletterIssue, col(NewsletterIssue.id) == Delivery.issue_id)
                .where(col(NewsletterIssue.status) == IssueStatus.sending.value, _due(now))
                .order_by(col(Delivery.id))
                .limit(limit)
                .with_for_update(of=Delivery, skip_locked=True)
            )
        ).all()
        claimed = []
        for row in rows:
            if row.status == DeliveryStatus.unknown.value:
                row.unknown_retried = True
            row.status = DeliveryStatus.sending.value
            row.lease_until = lease
            row.worker = worker
            row.attempts += 1
            row.message_id = issue_mail.message_id(settings, row.issue_id, pk(row.id))
            session.add(row)
            claimed.append(
                Claimed(
                    pk(row.id),
                    row.issue_id,
                    row.subscriber_id,
                    row.email,
                    row.paid,
                    row.member,
                    row.tiers,
                    worker,
                )  # fmt: skip
            )
        return claimed


def backoff(settings: Settings, attempts: int) -> datetime:
    """When a delivery tried `attempts` times is next due."""
    delay = min(settings.newsletter_retry_base_seconds * (2 ** max(0, attempts - 1)), 3600.0)
    return utcnow() + timedelta(seconds=delay)


# Rows checked together right before they are sent: one check per this many messages.
CHECK_AHEAD = 25
_IDS = ", ".join(f":id{i}" for i in range(CHECK_AHEAD))
# One autocommit statement, on the send's own direct-writes connection: renew the leases of
# the next rows that are still this worker's and say, for each, whether its subscriber still
# wants the newsletter. Through a session it was four round trips and 5 ms per check on
# PostgreSQL, a fifth of a send's time. The id list is always CHECK_AHEAD long (padded), so
# it is one statement text, prepared once.
_RENEW_AND_CHECK = Query.portable(
    "UPDATE delivery SET lease_until = :until"  # noqa: S608 - _IDS is our own placeholders
    f" WHERE id IN ({_IDS}) AND worker = :worker AND status = :sending"
    " RETURNING id, EXISTS (SELECT 1 FROM newsletter_subscription AS ns"
    " JOIN subscriber AS s ON s.id = ns.subscriber_id"
    " WHERE ns.subscriber_id = delivery.subscriber_id AND ns.newsletter_id = :newsletter_id"
    " AND ns.active = :yes AND s.status = :subscribed)"
)


@dataclass
class LookAhead:
    """Which of the next rows are still this worker's, and which of those still wanted."""

    wanted: dict[int, bool]
    valid_until: float  # time.monotonic(); half the lease, so a send never outlives it


async def renew_and_check(
    writes: DirectWrites,
    settings: Settings,
    items: Sequence[Claimed],
    newsletter_id: int,
) -> LookAhead:
    """Renew the leases of the next rows (at most CHECK_AHEAD) and read whether their
    subscribers still want the issue.

    Renewing with a conditional UPDATE means a slow batch keeps its rows and a row another
    worker has reclaimed (its lease ran out) is left to that worker, never sent by both.
    """
    lease = settings.newsletter_lease_seconds
    valid_until = time.monotonic() + lease / 2
    ids = [item.id for item in items]
    params: dict[str, object] = {f"id{i}": ids[min(i, len(ids) - 1)] for i in range(CHECK_AHEAD)}
    params |= {
        "until": writes.ts(utcnow() + timedelta(seconds=lease)),
        "worker": items[0].worker,
        "sending": DeliveryStatus.sending.value,
        "newsletter_id": newsletter_id,
        "yes": True,
        "subscribed": SubscriberStatus.active.value,
    }
    rows = await writes.execute(_RENEW_AND_CHECK, params)
    return LookAhead({int(row[0]): bool(row[1]) for row in rows}, valid_until)


class Outcome(NamedTuple):
    """What became of one delivery: the columns to set on its row."""

    delivery_id: int
    values: dict[str, object]
    # For a row not checked as still this worker's: written only while it is, so a row that
    # another worker took over (and maybe sent) when this one's lease ran out is left alone.
    worker: str | None = None


def sent(delivery_id: int, reply: str) -> Outcome:
    return Outcome(
        delivery_id,
        {
            "status": DeliveryStatus.sent.value,
            "sent_at": utcnow(),
            "last_reply": reply,
            "lease_until": None,
        },
    )


def skipped(delivery_id: int, reason: str, *, worker: str | None = None) -> Outcome:
    values: dict[str, object] = {"status": DeliveryStatus.skipped.value, "last_reply": reason}
    return Outcome(delivery_id, values, worker)


def unknown(delivery_id: int, settings: Settings, reply: str) -> Outcome:
    """Lost after the data went out: the server may have it. Retried once, same Message-ID."""
    return Outcome(
        delivery_id,
        {
            "status": DeliveryStatus.unknown.value,
            "last_reply": reply,
            "next_attempt_at": backoff(settings, 1),
            "lease_until": None,
        },
    )


@functools.lru_cache(maxsize=16)
def _outcome_query(columns: tuple[str, ...], if_mine: bool) -> Query:
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    mine = " AND worker = :worker AND status = :sending" if if_mine else ""
    # Column names are our own (the keys of the Outcome builders above); values are parameters.
    return Query.portable(f"UPDATE delivery SET {assignments} WHERE id = :delivery_id{mine}")  # noqa: S608


async def write_outcomes(writes: DirectWrites, outcomes: Sequence[Outcome]) -> None:
    """Record `outcomes`, one autocommit statement each."""
    for delivery_id, values, worker in outcomes:
        params = {k: writes.ts(v) if isinstance(v, datetime) else v for k, v in values.items()}
        params["delivery_id"] = delivery_id
        if worker is not None:
            params |= {"worker": worker, "sending": DeliveryStatus.sending.value}
        await writes.execute(_outcome_query(tuple(values), worker is not None), params)


async def record_transient(db: Database, settings: Settings, item: Claimed, reply: str) -> None:
    """A failure worth retrying: due again after a backoff, or failed after the last attempt."""
    async with db.session(inline=True) as session:
        row = await session.get(Delivery, item.id)
        if row is None:
            return
        if row.attempts >= settings.newsletter_max_attempts:
            row.status = DeliveryStatus.failed.value
        else:
            row.status = DeliveryStatus.pending.value
            row.next_attempt_at = backoff(settings, row.attempts)
        row.last_reply = reply
        row.lease_until = None
        session.add(row)


async def record_permanent(db: Database, item: Claimed, reply: str) -> None:
    """A permanent refusal: the delivery failed, and the address gets no more mail."""
    async with db.session(inline=True) as session:
        await session.exec(
            update(Delivery)
            .where(col(Delivery.id) == item.id)
            .values(status=DeliveryStatus.failed.value, last_reply=reply, lease_until=None)
        )
        await subscribers.suppress(session, item.subscriber_id, reply)


async def finish_done(db: Database) -> int:
    """Mark sending issues with no open deliveries as sent."""
    async with db.session() as session:
        open_counts = (
            select(func.count())
            .where(col(Delivery.issue_id) == NewsletterIssue.id, col(Delivery.status).in_(OPEN))
            .scalar_subquery()
        )
        done = (
            await session.exec(
                select(NewsletterIssue).where(
                    NewsletterIssue.status == IssueStatus.sending.value, open_counts == 0
                )
            )
        ).all()
        for issue in done:
            issue.status = IssueStatus.sent.value
            issue.finished_at = utcnow()
            session.add(issue)
        return len(done)


async def progress(session: AsyncSession, issue_id: int) -> dict[str, int]:
    """Give back the number of deliveries per status: queued, sending, sent, failed, skipped."""
    rows = await session.exec(
        select(Delivery.status, func.count())
        .where(Delivery.issue_id == issue_id)
        .group_by(col(Delivery.status))
    )
    counts = {status.value: 0 for status in DeliveryStatus}
    for status, count in rows:
        counts[status] = count
    counts["queued"] = counts.pop(DeliveryStatus.pending.value)
    return counts
