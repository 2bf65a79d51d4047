"""Who gets an issue: its recipients copied into the delivery ledger when its send starts.

The database does the copying (INSERT ... SELECT), a chunk of subscriber ids at a time, and
works out each row's paid flag, its tiers and the issue's segment itself, so a list of any
length starts in flat memory. The rest of the ledger is app/newsletter/outbox.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, func, literal, not_
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.billing.repository import paid_access_condition
from app.billing.repository.recipient_tiers import tier_list, tiers_condition
from app.core.config import Settings
from app.core.db import insert_ignoring_duplicates, pk, utcnow
from app.core.types import UTCDateTime
from app.newsletter import repository
from app.newsletter.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    NewsletterIssue,
    NewsletterSubscription,
    Segment,
    Subscriber,
    SubscriberStatus,
)

# Subscriber ids per INSERT ... SELECT. Each statement stays short: other writers and, on
# SQLite (whose write transaction runs on the event loop), other requests get their turn
# between chunks, and memory stays flat however long the list is.
SNAPSHOT_CHUNK = 5000
_DELIVERY_COLUMNS = (
    "issue_id", "subscriber_id", "email", "paid", "member", "tiers", "status", "attempts",
    "unknown_retried", "next_attempt_at", "message_id",
)  # fmt: skip


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
    issue: NewsletterIssue,
    segment_tiers: list[int],
    now: datetime,
    grace: timedelta,
    after: int,
    until: int,
) -> Select[Any]:
    """SQL: the delivery rows of one chunk, flags, tiers and segment worked out by the
    database."""
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
    elif issue.segment == Segment.tiers.value:
        # No tier named (a row edited by hand) sends to nobody: fail closed.
        where.append(tiers_condition(Subscriber.user_id, segment_tiers, now, grace))
    return (
        core_select(
            literal(pk(issue.id)),
            col(Subscriber.id),
            col(Subscriber.email),
            paid_flag,
            col(Subscriber.user_id).is_not(None),
            tier_list(col(Subscriber.user_id), now, grace),
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
    segment_tiers = await repository.issue_tier_ids(session, pk(issue.id))
    added, after = 0, 0
    while (until := (await session.exec(_chunk_end(issue, after, chunk))).one()) is not None:
        rows = _recipients(issue, segment_tiers, now, grace, after, until)
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
