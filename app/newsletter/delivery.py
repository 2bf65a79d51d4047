"""The durable send: snapshot recipients, claim batches, send over one SMTP connection,
record every outcome. At-least-once with a bound: a worker that dies loses only the one
message in flight, which its successor may send again (same Message-ID)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import aiosmtplib
from sqlalchemy import ColumnElement, Select, and_, func, literal, not_, or_, update
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.articles.live import is_live
from app.articles.models import Article
from app.billing.entitlements import paid_access_condition
from app.core.config import MailerKind, Settings
from app.core.db import Database, DirectWrites, Query, insert_ignoring_duplicates, pk, utcnow
from app.core.mail import FileMailer, SmtpMailer
from app.core.types import UTCDateTime
from app.newsletter import rendering, subscribers
from app.newsletter.dkim import sign_raw
from app.newsletter.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    Newsletter,
    NewsletterIssue,
    NewsletterSubscription,
    Segment,
    Subscriber,
    SubscriberStatus,
)

log = logging.getLogger("broadsheet.newsletter")

WORKER_ID = f"{os.uname().nodename}-{os.getpid()}-{secrets.token_hex(3)}"
OPEN = (DeliveryStatus.pending.value, DeliveryStatus.sending.value, DeliveryStatus.unknown.value)


# Subscriber ids per INSERT ... SELECT. Each statement stays short: other writers and, on
# SQLite (whose write transaction runs on the event loop), other requests get their turn
# between chunks, and memory stays flat however long the list is.
SNAPSHOT_CHUNK = 5000
_DELIVERY_COLUMNS = (
    "issue_id", "subscriber_id", "email", "paid", "member", "status", "attempts",
    "unknown_retried", "next_attempt_at", "message_id",
)  # fmt: skip
# The note on a scheduled issue held back because its article is not live.
WAITING_NOTE = "waiting for its article to go live"


def _chunk_end(issue: NewsletterIssue, after: int, chunk: int) -> SelectOfScalar[int | None]:
    """SQL: the last subscriber id of the next chunk of the list after `after` (NULL: done)."""
    ids = (
        select(NewsletterSubscription.subscriber_id)
        .where(
            col(NewsletterSubscription.newsletter_id) == issue.newsletter_id,
            col(NewsletterSubscription.active) == True,  # noqa: E712
            col(NewsletterSubscription.subscriber_id) > after,
        )
        .order_by(col(NewsletterSubscription.subscriber_id))
        .limit(chunk)
        .subquery()
    )
    return select(func.max(ids.c.subscriber_id))


def _recipients(
    issue: NewsletterIssue, now: datetime, grace: timedelta, after: int, until: int
) -> Select[Any]:
    """SQL: the delivery rows of one chunk, flags and segment worked out by the database."""
    paid = paid_access_condition(Subscriber.user_id, now, grace)
    where = [
        col(NewsletterSubscription.newsletter_id) == issue.newsletter_id,
        col(NewsletterSubscription.active) == True,  # noqa: E712
        col(NewsletterSubscription.subscriber_id) > after,
        col(NewsletterSubscription.subscriber_id) <= until,
        col(Subscriber.status) == SubscriberStatus.active.value,
    ]
    # A segment filters on the rule, so the flag it leaves is known without working it out twice.
    paid_flag: ColumnElement[bool] = paid
    if issue.segment == Segment.paid.value:
        where.append(paid)
        paid_flag = literal(True)
    elif issue.segment == Segment.free.value:
        where.append(not_(paid))
        paid_flag = literal(False)
    return (
        core_select(
            literal(pk(issue.id)),
            col(Subscriber.id),
            col(Subscriber.email),
            paid_flag,
            col(Subscriber.user_id).is_not(None),
            literal(DeliveryStatus.pending.value),
            literal(0),
            literal(False),
            literal(now, UTCDateTime()),
            literal(""),
        )
        .join(NewsletterSubscription, col(NewsletterSubscription.subscriber_id) == Subscriber.id)
        .where(*where)
    )


async def snapshot(
    session: AsyncSession,
    issue: NewsletterIssue,
    settings: Settings,
    *,
    chunk: int = SNAPSHOT_CHUNK,
) -> int:
    """Write one delivery row per current recipient of the issue; give back how many were added.

    The database copies the rows (INSERT ... SELECT, a chunk of subscriber ids at a time);
    none comes into Python. A row already there for the address is kept, so a repeated
    snapshot adds nobody twice.
    """
    now, grace = utcnow(), timedelta(days=settings.billing_grace_days)
    added, after = 0, 0
    while (until := (await session.exec(_chunk_end(issue, after, chunk))).one()) is not None:
        rows = _recipients(issue, now, grace, after, until)
        result = await session.exec(
            insert_ignoring_duplicates(Delivery).from_select(_DELIVERY_COLUMNS, rows)
        )
        added += result.rowcount
        after = until
        await asyncio.sleep(0)
    issue.recipients += added
    issue.status = IssueStatus.sending.value
    issue.started_at = issue.started_at or now
    session.add(issue)
    return added


@dataclass(frozen=True)
class ArticleWait:
    """An issue's article that is not live (yet) at the time asked about."""

    article_id: int
    status: str
    published_at: datetime | None


async def article_wait(
    session: AsyncSession, issue: NewsletterIssue, at: datetime | None = None
) -> ArticleWait | None:
    """Give back the issue's article when it is not live at `at` (now); None when nothing waits."""
    if issue.article_id is None:
        return None
    row = (
        await session.exec(
            select(col(Article.status), col(Article.published_at), is_live(at)).where(
                col(Article.id) == issue.article_id
            )
        )
    ).first()
    if row is None or row[2]:
        return None
    return ArticleWait(issue.article_id, row[0], row[1])


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
            if await article_wait(session, issue, now) is not None:
                _hold(issue, now)
                session.add(issue)
                continue
            if issue.note == WAITING_NOTE:
                issue.note = "waited for its article to go live"
            await snapshot(session, issue, settings)
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
            result = await session.exec(
                update(Delivery)
                .where(
                    col(Delivery.issue_id) == issue.id,
                    col(Delivery.status).in_(
                        [DeliveryStatus.pending.value, DeliveryStatus.unknown.value]
                    ),
                )
                .values(status=DeliveryStatus.skipped.value, last_reply="send-by deadline passed")
            )
            issue.status = IssueStatus.expired.value
            issue.finished_at = now
            issue.note = f"stopped at the send-by deadline; {result.rowcount} not sent"
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
    worker: str = WORKER_ID


async def claim(
    db: Database, settings: Settings, *, limit: int, worker: str = WORKER_ID
) -> list[Claimed]:
    """Take up to `limit` due deliveries under a lease; concurrent workers never overlap."""
    now = utcnow()
    lease = now + timedelta(seconds=settings.newsletter_lease_seconds)
    due = or_(
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
    async with db.session(inline=True) as session:
        rows = (
            await session.exec(
                select(Delivery)
                .join(NewsletterIssue, col(NewsletterIssue.id) == Delivery.issue_id)
                .where(col(NewsletterIssue.status) == IssueStatus.sending.value, due)
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
            row.message_id = rendering.message_id(settings, row.issue_id, pk(row.id))
            session.add(row)
            claimed.append(
                Claimed(
                    pk(row.id),
                    row.issue_id,
                    row.subscriber_id,
                    row.email,
                    row.paid,
                    row.member,
                    worker,
                )
            )
        return claimed


def _backoff(settings: Settings, attempts: int) -> datetime:
    delay = min(settings.newsletter_retry_base_seconds * (2 ** max(0, attempts - 1)), 3600.0)
    return utcnow() + timedelta(seconds=delay)


Outcomes = list[tuple[int, dict[str, object]]]


@functools.lru_cache(maxsize=16)
def _outcome_query(columns: tuple[str, ...]) -> Query:
    assignments = ", ".join(f"{name} = :{name}" for name in columns)
    # Column names are our own (the keys _sent and send_batch write); values are parameters.
    return Query.portable(f"UPDATE delivery SET {assignments} WHERE id = :delivery_id")  # noqa: S608


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
class _Checked:
    """Which of the next rows are still this worker's, and which of those still wanted."""

    wanted: dict[int, bool]
    valid_until: float  # time.monotonic(); half the lease, so a send never outlives it


async def _check_ahead(
    writes: DirectWrites,
    settings: Settings,
    items: Sequence[Claimed],
    newsletter_id: int,
) -> _Checked:
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
    return _Checked({int(row[0]): bool(row[1]) for row in rows}, valid_until)


async def _write(writes: DirectWrites, outcomes: Outcomes) -> None:
    """Record `outcomes`, one statement each, and empty the list."""
    for delivery_id, values in outcomes:
        params = {k: writes.ts(v) if isinstance(v, datetime) else v for k, v in values.items()}
        await writes.execute(_outcome_query(tuple(values)), {**params, "delivery_id": delivery_id})
    outcomes.clear()


async def _content(
    db: Database, issue_id: int, renderer_html: dict[int, rendering.IssueContent]
) -> rendering.IssueContent:
    cached = renderer_html.get(issue_id)
    if cached is not None:
        return cached
    async with db.session(write=False) as session:
        issue = await session.get(NewsletterIssue, issue_id)
        assert issue is not None  # noqa: S101 - deliveries cascade with their issue
        newsletter = await session.get(Newsletter, issue.newsletter_id)
        assert newsletter is not None  # noqa: S101
        article = await session.get(Article, issue.article_id) if issue.article_id else None
    intro = await rendering.intro_html(issue.body_md)
    content = rendering.IssueContent(newsletter, issue, intro, article)
    renderer_html[issue_id] = content
    return content


class _Pacer:
    """Spaces sends to at most `rate` a second (0 = no limit)."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.next = time.monotonic()

    async def wait(self) -> None:
        if not self.interval:
            return
        now = time.monotonic()
        if now < self.next:
            await asyncio.sleep(self.next - now)
        self.next = max(now, self.next) + self.interval


async def send_batch(db: Database, settings: Settings, batch: Sequence[Claimed]) -> int:
    """Send claimed deliveries over one reused SMTP connection; give back how many were sent."""
    contents: dict[int, rendering.IssueContent] = {}
    pacer = _Pacer(settings.send_rate)
    mailer = SmtpMailer(settings)
    client: aiosmtplib.SMTP | None = None
    sent = 0
    # Skips wait here for the next transaction. A sent message's outcome is written while
    # the next message's envelope goes out, and finished before its data does (_send_one),
    # so a crash can lose at most the one message in flight.
    outcomes: Outcomes = []
    recording: asyncio.Task[None] | None = None
    checked = _Checked({}, 0.0)
    writes = db.writes()

    async def record() -> None:
        """Finish the write under way, then write what is still waiting."""
        nonlocal recording
        if recording is not None:
            running, recording = recording, None
            await running
        await _write(writes, outcomes)

    try:
        for index, item in enumerate(batch):
            content = await _content(db, item.issue_id, contents)
            if content.issue.status not in (IssueStatus.sending.value, IssueStatus.paused.value):
                outcomes.append(
                    (
                        item.id,
                        {"status": DeliveryStatus.skipped.value, "last_reply": "issue stopped"},
                    )
                )
                continue
            if item.id not in checked.wanted or time.monotonic() > checked.valid_until:
                ahead = [
                    i for i in batch[index : index + CHECK_AHEAD] if i.issue_id == item.issue_id
                ]
                await record()
                checked = await _check_ahead(writes, settings, ahead, pk(content.newsletter.id))
            wanted = checked.wanted.get(item.id)
            if wanted is None:
                continue
            if not wanted:
                outcomes.append(
                    (
                        item.id,
                        {
                            "status": DeliveryStatus.skipped.value,
                            "last_reply": "unsubscribed or suppressed",
                        },
                    )
                )
                continue
            recipient = rendering.Recipient(
                item.id, item.subscriber_id, item.email, item.paid, item.member
            )
            raw = rendering.compose(content, recipient, settings, api_url=settings.api_url)
            if settings.mailer is MailerKind.file:
                # Development: each message becomes an .eml file under var/outbox/.
                await FileMailer(settings).send_raw(raw)
                outcomes.append((item.id, _sent("written to outbox")))
                await record()
                sent += 1
                continue
            raw = sign_raw(raw, settings)
            sender = settings.mail_from.rsplit("<", 1)[-1].rstrip(">").strip()
            await pacer.wait()
            if client is None:
                client = mailer.client()
                try:
                    await client.connect()
                except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                    client = None
                    await record()
                    await _transient(db, settings, item, f"connect: {exc}")
                    continue
            if recording is None and outcomes:
                recording = asyncio.create_task(_write(writes, _taken(outcomes)))
            previous, recording = recording, None
            outcome = await _send_one(client, sender, item.email, raw, previous)
            if outcome.kind == "sent":
                outcomes.append((item.id, _sent(outcome.reply)))
                recording = asyncio.create_task(_write(writes, _taken(outcomes)))
                sent += 1
            elif outcome.kind == "unknown":
                outcomes.append(
                    (
                        item.id,
                        {
                            "status": DeliveryStatus.unknown.value,
                            "last_reply": outcome.reply,
                            "next_attempt_at": _backoff(settings, 1),
                            "lease_until": None,
                        },
                    )
                )
                await record()
            else:
                await record()
                if outcome.kind == "permanent":
                    await _permanent(db, item, outcome.reply)
                else:
                    await _transient(db, settings, item, outcome.reply)
            if outcome.reconnect:
                await _close(client)
                client = None
    finally:
        try:
            await record()
        finally:
            await writes.close()
            if client is not None:
                await _close(client)
    return sent


def _taken(outcomes: Outcomes) -> Outcomes:
    """Give back the outcomes waiting to be written and start a new list of them."""
    taken = list(outcomes)
    outcomes.clear()
    return taken


def _sent(reply: str) -> dict[str, object]:
    return {
        "status": DeliveryStatus.sent.value,
        "sent_at": utcnow(),
        "last_reply": reply,
        "lease_until": None,
    }


async def _close(client: aiosmtplib.SMTP) -> None:
    try:
        await client.quit()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        client.close()


@dataclass(frozen=True)
class _Outcome:
    kind: str  # sent | transient | permanent | unknown
    reply: str
    reconnect: bool = False


_SMTP_FAILURES = (aiosmtplib.SMTPException, OSError, TimeoutError)


async def _send_one(
    client: aiosmtplib.SMTP,
    sender: str,
    to: str,
    raw: bytes,
    recorded: asyncio.Future[None] | None = None,
) -> _Outcome:
    """Send one message. `recorded`, the write of the message before, runs alongside the
    envelope and is waited for before the data: the server accepts nothing while an earlier
    message is still unrecorded, so a crash still costs at most one duplicate."""
    refused: Exception | None = None
    try:
        await client.mail(sender)
        await client.rcpt(to)
    except _SMTP_FAILURES as exc:
        refused = exc
    finally:
        # The write of the message before is finished whatever became of this envelope.
        if recorded is not None:
            await recorded
    if refused is not None:
        return await _failed(client, refused, after_data=False)
    try:
        response = await client.data(raw)
    except _SMTP_FAILURES as exc:
        return await _failed(client, exc, after_data=True)
    return _Outcome("sent", f"{response.code} {response.message}"[:500])


async def _failed(client: aiosmtplib.SMTP, exc: Exception, *, after_data: bool) -> _Outcome:
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        await _reset(client)
        kind = "permanent" if 500 <= exc.code < 600 else "transient"
        return _Outcome(kind, f"{exc.code} {exc.message}"[:500], reconnect=exc.code == 421)
    # Lost after the data went out: the server may have accepted it. Retry once, with the
    # same Message-ID.
    kind = "unknown" if after_data else "transient"
    return _Outcome(kind, f"{type(exc).__name__}: {exc}"[:500], reconnect=True)


async def _reset(client: aiosmtplib.SMTP) -> None:
    with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
        await client.rset()


async def _transient(db: Database, settings: Settings, item: Claimed, reply: str) -> None:
    async with db.session(inline=True) as session:
        row = await session.get(Delivery, item.id)
        if row is None:
            return
        if row.attempts >= settings.newsletter_max_attempts:
            row.status = DeliveryStatus.failed.value
        else:
            row.status = DeliveryStatus.pending.value
            row.next_attempt_at = _backoff(settings, row.attempts)
        row.last_reply = reply
        row.lease_until = None
        session.add(row)


async def _permanent(db: Database, item: Claimed, reply: str) -> None:
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


async def run_round(db: Database, settings: Settings) -> int:
    """One worker round: start due issues, stop overdue ones, send one batch, close finished."""
    work = await promote_due(db, settings)
    work += await expire_overdue(db)
    batch = await claim(db, settings, limit=settings.newsletter_batch_size)
    if batch:
        await send_batch(db, settings, batch)
        work += len(batch)
    work += await finish_done(db)
    return work
