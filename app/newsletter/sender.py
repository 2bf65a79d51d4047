"""The newsletter send: a claimed batch over one mail session, every outcome on record.

Pipelined: a sent message's outcome is written while the next message's envelope (MAIL FROM,
RCPT TO) goes out, and that message's data waits until the write has committed. So the
server never holds two unrecorded messages, and a crash costs at most the one in flight.
The mail goes through the `Mailer` boundary only (app/core/mail.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass

from app.core.config import Settings
from app.core.db import Database, DirectWrites, pk
from app.core.mail import Mailer, MailError, MailSession, build_mailer, envelope_sender
from app.newsletter import issue_mail, outbox, repository
from app.newsletter.dkim import sign_raw
from app.newsletter.issue_mail import IssueContent, Recipient
from app.newsletter.models import IssueStatus
from app.newsletter.outbox import CHECK_AHEAD, Claimed, LookAhead, Outcome

# Issues whose deliveries may still go: a paused issue's claimed batch finishes.
_RUNNING = (IssueStatus.sending.value, IssueStatus.paused.value)


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


class OutcomeLog:
    """Outcomes on their way to the ledger: written in the background while the next envelope
    goes out, and finished before anything that must see them on record."""

    def __init__(self, writes: DirectWrites) -> None:
        self.writes = writes
        self.waiting: list[Outcome] = []
        self.writing: asyncio.Task[None] | None = None

    def add(self, outcome: Outcome) -> None:
        self.waiting.append(outcome)

    def write_in_background(self) -> None:
        """Start writing what waits, unless a write is already under way."""
        if self.writing is None and self.waiting:
            taken, self.waiting = self.waiting, []
            self.writing = asyncio.create_task(outbox.write_outcomes(self.writes, taken))

    def hand_off(self) -> asyncio.Task[None] | None:
        """Give the write under way to the send that must wait for it before its data."""
        writing, self.writing = self.writing, None
        return writing

    async def flush(self) -> None:
        """Finish the write under way, then write what still waits."""
        if self.writing is not None:
            writing, self.writing = self.writing, None
            await writing
        taken, self.waiting = self.waiting, []
        await outbox.write_outcomes(self.writes, taken)


@dataclass(frozen=True)
class SendResult:
    """What the server made of one message."""

    kind: str  # sent | transient | permanent | unknown
    reply: str
    reconnect: bool = False


async def send_one(
    session: MailSession,
    sender: str,
    to: str,
    raw: bytes,
    recorded: asyncio.Future[None] | None = None,
) -> SendResult:
    """Send one message. `recorded`, the write of the message before, runs alongside the
    envelope and is waited for before the data: the server accepts nothing while an earlier
    message is still unrecorded, so a crash still costs at most one duplicate."""
    refused: MailError | None = None
    try:
        await session.mail_from(sender)
        await session.rcpt_to(to)
    except MailError as exc:
        refused = exc
    finally:
        # The write of the message before is finished whatever became of this envelope.
        if recorded is not None:
            await recorded
    if refused is not None:
        return await _failed(session, refused, after_data=False)
    try:
        reply = await session.data(raw)
    except MailError as exc:
        return await _failed(session, exc, after_data=True)
    return SendResult("sent", reply)


async def _failed(session: MailSession, exc: MailError, *, after_data: bool) -> SendResult:
    if exc.reply_code is not None:
        await session.reset()
        kind = "permanent" if exc.permanent else "transient"
        return SendResult(kind, str(exc), reconnect=exc.reply_code == 421)
    # No reply: after the data, the server may have taken it (retried once, same Message-ID).
    kind = "unknown" if after_data else "transient"
    return SendResult(kind, str(exc), reconnect=True)


class _BatchSend:
    """One batch's send: its mail session, rendered issues, look-ahead and outcome log."""

    def __init__(
        self, db: Database, settings: Settings, mailer: Mailer, batch: Sequence[Claimed]
    ) -> None:
        self.db, self.settings, self.mailer, self.batch = db, settings, mailer, batch
        self.sender = envelope_sender(settings)
        self.pacer = _Pacer(settings.send_rate)
        self.contents: dict[int, IssueContent] = {}
        self.look_ahead = LookAhead({}, 0.0)
        self.writes = db.writes()
        self.log = OutcomeLog(self.writes)
        self.connection: AsyncExitStack | None = None
        self.session: MailSession | None = None
        self.sent = 0

    async def run(self) -> int:
        try:
            for index, item in enumerate(self.batch):
                await self._deliver(index, item)
        finally:
            try:
                await self.log.flush()
            finally:
                await self.writes.close()
                await self._disconnect()
        return self.sent

    async def _deliver(self, index: int, item: Claimed) -> None:
        content = await self._content(item.issue_id)
        if content.issue.status not in _RUNNING:
            self.log.add(outbox.skipped(item.id, "issue stopped", worker=item.worker))
            return
        wanted = await self._still_wanted(index, item, content)
        if wanted is None:
            return  # no longer this worker's: another one took it over
        if not wanted:
            self.log.add(outbox.skipped(item.id, "unsubscribed or suppressed"))
            return
        recipient = Recipient(
            item.id, item.subscriber_id, item.email, item.paid, item.member, item.tiers
        )
        raw = issue_mail.compose(content, recipient, self.settings, api_url=self.settings.api_url)
        raw = sign_raw(raw, self.settings)
        await self.pacer.wait()
        session = await self._session(item)
        if session is None:
            return
        self.log.write_in_background()
        result = await send_one(session, self.sender, item.email, raw, self.log.hand_off())
        await self._settle(item, result)

    async def _content(self, issue_id: int) -> IssueContent:
        """The issue as every recipient of this batch gets it, loaded and rendered once."""
        content = self.contents.get(issue_id)
        if content is None:
            async with self.db.session(write=False) as read:
                issue = await repository.get_issue(read, issue_id)
                assert issue is not None  # noqa: S101 - deliveries cascade with their issue
                newsletter = await repository.get_newsletter(read, issue.newsletter_id)
                assert newsletter is not None  # noqa: S101
                article = await repository.article(read, issue.article_id)
                tiers = await repository.article_tier_ids(read, issue.article_id)
            content = await issue_mail.issue_content(newsletter, issue, article, tiers)
            self.contents[issue_id] = content
        return content

    async def _still_wanted(self, index: int, item: Claimed, content: IssueContent) -> bool | None:
        """Whether the row is still this worker's (None if not) and its reader still wants it;
        checked CHECK_AHEAD rows at a time, renewing their leases."""
        ahead = self.look_ahead
        if item.id not in ahead.wanted or time.monotonic() > ahead.valid_until:
            rows = [
                i for i in self.batch[index : index + CHECK_AHEAD] if i.issue_id == item.issue_id
            ]
            await self.log.flush()
            ahead = await outbox.renew_and_check(
                self.writes, self.settings, rows, pk(content.newsletter.id)
            )
            self.look_ahead = ahead
        return ahead.wanted.get(item.id)

    async def _session(self, item: Claimed) -> MailSession | None:
        """The open mail session, connecting first; None when that failed (retried later)."""
        if self.session is None:
            connection = AsyncExitStack()
            try:
                self.session = await connection.enter_async_context(self.mailer.open())
            except MailError as exc:
                await self.log.flush()
                await outbox.record_transient(self.db, self.settings, item, f"connect: {exc}")
                return None
            self.connection = connection
        return self.session

    async def _settle(self, item: Claimed, result: SendResult) -> None:
        """Put the result on record: a send beside the next envelope, the rest at once."""
        if result.kind == "sent":
            self.log.add(outbox.sent(item.id, result.reply))
            self.log.write_in_background()
            self.sent += 1
        elif result.kind == "unknown":
            self.log.add(outbox.unknown(item.id, self.settings, result.reply))
            await self.log.flush()
        else:
            await self.log.flush()
            if result.kind == "permanent":
                await outbox.record_permanent(self.db, item, result.reply)
            else:
                await outbox.record_transient(self.db, self.settings, item, result.reply)
        if result.reconnect:
            await self._disconnect()

    async def _disconnect(self) -> None:
        connection, self.connection, self.session = self.connection, None, None
        if connection is not None:
            await connection.aclose()


async def send_batch(
    db: Database, settings: Settings, batch: Sequence[Claimed], mailer: Mailer | None = None
) -> int:
    """Send claimed deliveries over one reused mail session; give back how many were sent."""
    return await _BatchSend(db, settings, mailer or build_mailer(settings), batch).run()
