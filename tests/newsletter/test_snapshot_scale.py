"""The send snapshot at scale: 100,000 subscribers copied by the database, in chunks, with
the paid and member flags, the tiers and the segment worked out in SQL and checked against the
Python entitlement rule."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, event, func, insert
from sqlmodel import col, select

from app.access.entitlements import (
    GrantFacts,
    SubscriptionFacts,
    grant_entitles,
    subscription_entitles,
)
from app.accounts.models import STAFF_ROLES, Role, User
from app.billing.models import CompGrant, Subscription
from app.core.db import Database, utcnow
from app.newsletter import recipients
from app.newsletter.models import (
    Delivery,
    NewsletterIssue,
    NewsletterSubscription,
    Subscriber,
    SubscriberStatus,
)
from tests.newsletter.conftest import Mailroom

DAY = timedelta(days=1)
LISTS = ("daily", "weekly", "digest")


@dataclass
class Reader:
    """One generated subscriber and what the Python rules say about it."""

    email: str
    status: str
    role: str | None  # None: email-only, no account
    subscriptions: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    lists: dict[str, bool] = field(default_factory=dict)  # list slug -> subscription active

    def paid(self, now: datetime, grace: timedelta) -> bool:
        """The entitlement rule in Python (billing.repository), staff included."""
        if self.role is None:
            return False
        if self.role in STAFF_ROLES:
            return True
        subs = [
            SubscriptionFacts(
                s["status"], s["current_period_end"], s["cancel_at_period_end"], s["past_due_since"]
            )
            for s in self.subscriptions
        ]
        grants = [GrantFacts(g["starts_at"], g["ends_at"], g["revoked_at"]) for g in self.grants]
        return any(subscription_entitles(s, now, grace) for s in subs) or any(
            grant_entitles(g, now) for g in grants
        )

    def tiers(self, now: datetime) -> str:
        """The delivery's tier list: staff and running comps read every tier; the generated
        subscriptions have no plan, so they name no tier."""
        if self.role in STAFF_ROLES:
            return "*"
        grants = [GrantFacts(g["starts_at"], g["ends_at"], g["revoked_at"]) for g in self.grants]
        return "*" if any(grant_entitles(g, now) for g in grants) else ""


def _sub(
    status: str,
    period_end: datetime | None,
    *,
    cancel: bool = False,
    past_due: datetime | None = None,
) -> dict[str, Any]:
    return {
        "status": status,
        "current_period_end": period_end,
        "cancel_at_period_end": cancel,
        "past_due_since": past_due,
    }


def _grant(
    starts: datetime, ends: datetime | None = None, revoked: datetime | None = None
) -> dict[str, Any]:
    return {"starts_at": starts, "ends_at": ends, "revoked_at": revoked}


def _billing(n: int, now: datetime) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Member n's subscriptions and comp grants: every state the rule tells apart."""
    kind = (n // 2) % 12
    subs: list[dict[str, Any]] = []
    grants: list[dict[str, Any]] = []
    if kind == 0:  # active, plus an old canceled one (two rows must not make two recipients)
        subs += [_sub("active", now + 20 * DAY), _sub("canceled", now - 300 * DAY)]
    elif kind == 1:
        subs.append(_sub("trialing", now + 5 * DAY))
    elif kind == 2:  # past due inside the grace period
        subs.append(_sub("past_due", now - 20 * DAY, past_due=now - 2 * DAY))
    elif kind == 3:  # past due too long; some of them comped
        subs.append(_sub("past_due", now - 40 * DAY, past_due=now - 30 * DAY))
        if n % 3 == 0:
            grants.append(_grant(now - 5 * DAY, now + 30 * DAY))
    elif kind == 4:
        subs.append(_sub("canceled", now - 10 * DAY))
    elif kind == 5:  # "active" long after its period: a missed cancellation
        subs.append(_sub("active", now - 60 * DAY))
    elif kind == 6:
        subs.append(_sub("active", now + 3 * DAY, cancel=True))
    elif kind == 7:
        grants.append(_grant(now - 10 * DAY))
    elif kind == 8:
        grants.append(_grant(now - 10 * DAY, now - DAY))
    elif kind == 9:
        grants.append(_grant(now - 10 * DAY, revoked=now - 2 * DAY))
    elif kind == 10:  # a comp that has not started, and an unpaid subscription
        grants.append(_grant(now + 5 * DAY))
        subs.append(_sub("unpaid", now - 3 * DAY))
    return subs, grants


def generate(size: int, now: datetime) -> Iterator[Reader]:
    """Email-only readers and members in every billing state, on up to three lists."""
    statuses = {7: "unsubscribed", 13: "bounced", 3: "pending"}
    staff = {0: Role.editor.value, 250: Role.admin.value, 500: Role.author.value}
    for n in range(size):
        role = staff.get(n % 1000, Role.reader.value) if n % 2 == 0 else None
        reader = Reader(f"r{n}@scale.example", statuses.get(n % 20, "active"), role)
        if role is not None:
            reader.subscriptions, reader.grants = _billing(n, now)
        if n % 3 != 0:
            reader.lists["daily"] = n % 11 != 0
        if n % 2 == 1:
            reader.lists["weekly"] = True
        if n % 5 == 0:
            reader.lists["digest"] = n % 7 != 0
        yield reader


async def populate(db: Database, readers: list[Reader], lists: dict[str, int]) -> dict[str, int]:
    """Bulk-insert the readers (users, subscribers, billing, list choices); give back the
    subscriber id of each email."""
    now = utcnow()
    async with db.session() as session:
        conn = await session.connection()
        members = [r for r in readers if r.role is not None]
        if members:
            await conn.execute(
                insert(User),
                [{"email": r.email, "role": r.role, "display_name": "", "email_verified": True,
                  "disabled": False, "created_at": now} for r in members],
            )  # fmt: skip
        user_ids = dict((await conn.execute(select(User.email, User.id))).tuples().all())
        await conn.execute(
            insert(Subscriber),
            [{"email": r.email, "user_id": user_ids.get(r.email), "status": r.status,
              "source": "scale", "created_at": now, "confirmed_at": now} for r in readers],
        )  # fmt: skip
        subscriber_ids = dict(
            (await conn.execute(select(Subscriber.email, Subscriber.id))).tuples().all()
        )
        subs = [
            {**s, "user_id": user_ids[r.email], "provider": "stripe", "customer_id": f"cus_{i}",
             "provider_subscription_id": f"sub_{i}_{k}", "amount": 500, "currency": "usd",
             "interval": "month", "created_at": now, "updated_at": now}
            for i, r in enumerate(members) for k, s in enumerate(r.subscriptions)
        ]  # fmt: skip
        if subs:
            await conn.execute(insert(Subscription), subs)
        grants = [
            {**g, "user_id": user_ids[r.email], "reason": ""} for r in members for g in r.grants
        ]
        if grants:
            await conn.execute(insert(CompGrant), grants)
        choices = [
            {"subscriber_id": subscriber_ids[r.email], "newsletter_id": lists[slug],
             "active": active, "subscribed_at": now}
            for r in readers for slug, active in r.lists.items()
        ]  # fmt: skip
        await conn.execute(insert(NewsletterSubscription), choices)
    return subscriber_ids


def expected(
    readers: list[Reader], slug: str, segment: str, now: datetime, grace: timedelta
) -> dict[str, tuple[bool, bool, str]]:
    """Email -> (paid, member, tiers) of the rows a snapshot of `slug` for `segment` must
    write."""
    out = {}
    for r in readers:
        if not r.lists.get(slug) or r.status != SubscriberStatus.active.value:
            continue
        paid = r.paid(now, grace)
        if (segment == "paid" and not paid) or (segment == "free" and paid):
            continue
        out[r.email] = (paid, r.role is not None, r.tiers(now))
    return out


async def written(db: Database, issue_id: int) -> dict[str, tuple[bool, bool, str]]:
    async with db.session(write=False) as session:
        rows = await session.exec(
            select(Delivery.email, Delivery.paid, Delivery.member, Delivery.tiers).where(
                col(Delivery.issue_id) == issue_id
            )
        )
        return {email: (bool(paid), bool(member), t) for email, paid, member, t in rows}


async def lists(mailroom: Mailroom) -> dict[str, int]:
    return {slug: await mailroom.newsletter(slug) for slug in LISTS}


async def test_hundred_thousand_subscribers_snapshot_exactly_per_segment(
    mailroom: Mailroom,
) -> None:
    now, grace = utcnow(), timedelta(days=mailroom.settings.billing_grace_days)
    readers = list(generate(100_000, now))
    ids = await lists(mailroom)
    subscriber_ids = await populate(mailroom.db, readers, ids)
    statements: list[tuple[str, Any, bool]] = []

    def seen(_c: Any, _cur: Any, sql: str, params: Any, _ctx: Any, many: bool) -> None:
        statements.append((sql, params, many))

    engine = mailroom.db.write_engine.sync_engine
    for segment in ("all", "free", "paid"):
        issue = await mailroom.issue(ids["daily"], segment=segment)
        statements.clear()
        event.listen(engine, "before_cursor_execute", seen)
        try:
            started = await mailroom.send(issue)
        finally:
            event.remove(engine, "before_cursor_execute", seen)
        want = expected(readers, "daily", segment, now, grace)
        assert started["recipients"] == len(want) > 1000
        assert await written(mailroom.db, issue) == want
        # Bounded statements: the rows are copied chunk by chunk, none passes through Python.
        inserts = [s for s in statements if s[0].startswith("INSERT INTO delivery")]
        chunks = math.ceil(
            sum(1 for r in readers if r.lists.get("daily")) / recipients.SNAPSHOT_CHUNK
        )
        assert len(inserts) == chunks
        assert all(not many and len(params) < 40 for _, params, many in statements)
    free, paid = (expected(readers, "daily", s, now, grace) for s in ("free", "paid"))
    assert {e for e, (_, member, _) in free.items() if not member}  # email-only readers: free
    assert any(member for _, member, _ in paid.values())
    assert {t for _, _, t in paid.values()} == {"*", ""}
    async with mailroom.db.session(write=False) as session:
        sample = (
            await session.exec(select(Delivery.email, Delivery.subscriber_id).limit(500))
        ).all()
    assert all(subscriber_ids[email] == sid for email, sid in sample)


async def test_a_repeated_snapshot_adds_nobody_twice(mailroom: Mailroom) -> None:
    now, grace = utcnow(), timedelta(days=mailroom.settings.billing_grace_days)
    readers = list(generate(30_000, now))
    ids = await lists(mailroom)
    await populate(mailroom.db, readers, ids)
    issue_id = await mailroom.issue(ids["weekly"])
    first = (await mailroom.send(issue_id))["recipients"]
    want = expected(readers, "weekly", "all", now, grace)
    assert first == len(want)
    async with mailroom.db.session() as session:
        issue = await session.get(NewsletterIssue, issue_id)
        assert issue is not None
        assert await recipients.snapshot(session, issue, mailroom.settings, chunk=777) == 0
    async with mailroom.db.session() as session:
        await session.exec(
            delete(Delivery).where(
                col(Delivery.issue_id) == issue_id,
                col(Delivery.id).in_(
                    select(Delivery.id).where(Delivery.issue_id == issue_id).limit(1234)
                ),
            )
        )
        issue = await session.get(NewsletterIssue, issue_id)
        assert issue is not None
        # Only the missing rows come back; the count on the issue is the rows written.
        assert await recipients.snapshot(session, issue, mailroom.settings) == 1234
        assert issue.recipients == first + 1234
    assert await written(mailroom.db, issue_id) == want


async def test_more_than_32767_member_subscribers_start(mailroom: Mailroom) -> None:
    """asyncpg takes at most 32,767 arguments a statement: the old IN list of member ids
    could not start this issue on PostgreSQL."""
    now, grace = utcnow(), timedelta(days=mailroom.settings.billing_grace_days)
    readers = [
        Reader(f"m{n}@scale.example", "active", Role.reader.value, lists={"daily": True})
        for n in range(33_000)
    ]
    for n, reader in enumerate(readers[::3]):
        reader.subscriptions = [_sub("active" if n % 2 else "canceled", now + 9 * DAY)]
    ids = await lists(mailroom)
    await populate(mailroom.db, readers, ids)
    issue = await mailroom.issue(ids["daily"])
    started = await mailroom.send(issue)
    want = expected(readers, "daily", "all", now, grace)
    assert started["recipients"] == 33_000 == len(want)
    assert await written(mailroom.db, issue) == want
    assert sum(paid for paid, _, _ in want.values()) == 5500


async def test_snapshot_gives_the_event_loop_a_turn_between_chunks(mailroom: Mailroom) -> None:
    """On SQLite the write transaction runs on the loop: other requests wait for its turns."""
    newsletter = await mailroom.newsletter()
    await mailroom.subscribers(newsletter, 1000)
    issue_id = await mailroom.issue(newsletter)
    turns = 0

    async def other_request() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(other_request())
    try:
        async with mailroom.db.session() as session:
            issue = await session.get(NewsletterIssue, issue_id)
            assert issue is not None
            assert await recipients.snapshot(session, issue, mailroom.settings, chunk=100) == 1000
    finally:
        ticker.cancel()
    assert turns >= 10
    async with mailroom.db.session(write=False) as session:
        count = (await session.exec(select(func.count()).select_from(Delivery))).one()
    assert count == 1000
