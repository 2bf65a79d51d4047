"""The entitlement rule as a table: status x period x grace x cancellation, and comps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.access.entitlements import (
    AccessLevel,
    GrantFacts,
    SubscriptionFacts,
    entitlements_from,
)

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
GRACE = timedelta(days=7)
LATER = NOW + timedelta(days=10)
EARLIER = NOW - timedelta(days=10)
JUST = NOW - timedelta(days=2)


def sub(
    status: str,
    period_end: datetime | None = LATER,
    *,
    cancel: bool = False,
    past_due_since: datetime | None = None,
) -> SubscriptionFacts:
    return SubscriptionFacts(status, period_end, cancel, past_due_since)


PAID, MEMBER = AccessLevel.paid, AccessLevel.member


def level_from(
    subs: list[SubscriptionFacts], grants: list[GrantFacts], *, now: datetime, grace: timedelta
) -> AccessLevel:
    return entitlements_from(subs, grants, now=now, grace=grace).level


TABLE = [
    ("active in period", sub("active"), PAID),
    ("trialing", sub("trialing"), PAID),
    ("active, cancel at period end, period running", sub("active", cancel=True), PAID),
    ("active, cancel at period end, period long over", sub("active", EARLIER, cancel=True), MEMBER),
    ("active, renewal webhook a little late", sub("active", JUST), PAID),
    ("past_due inside grace", sub("past_due", past_due_since=JUST), PAID),
    ("past_due beyond grace", sub("past_due", past_due_since=EARLIER), MEMBER),
    ("past_due without a start falls back to period end", sub("past_due", JUST), PAID),
    ("canceled", sub("canceled"), MEMBER),
    ("unpaid", sub("unpaid"), MEMBER),
    ("incomplete", sub("incomplete"), MEMBER),
    ("incomplete_expired", sub("incomplete_expired"), MEMBER),
    ("paused", sub("paused"), MEMBER),
    ("unknown status fails closed", sub("mystery_status"), MEMBER),
]


@pytest.mark.parametrize(("name", "facts", "level"), TABLE, ids=[t[0] for t in TABLE])
def test_entitlement_table(name: str, facts: SubscriptionFacts, level: AccessLevel) -> None:
    assert level_from([facts], [], now=NOW, grace=GRACE) is level


@pytest.mark.parametrize(
    ("grant", "level"),
    [
        (GrantFacts(EARLIER, None, None), PAID),
        (GrantFacts(EARLIER, LATER, None), PAID),
        (GrantFacts(EARLIER, JUST, None), MEMBER),
        (GrantFacts(LATER, None, None), MEMBER),
        (GrantFacts(EARLIER, None, JUST), MEMBER),
    ],
)
def test_complimentary_grants(grant: GrantFacts, level: AccessLevel) -> None:
    assert level_from([sub("canceled")], [grant], now=NOW, grace=GRACE) is level


def test_any_entitling_subscription_wins() -> None:
    assert level_from([sub("canceled"), sub("active")], [], now=NOW, grace=GRACE) is PAID
    assert level_from([], [], now=NOW, grace=GRACE) is MEMBER


async def test_sql_rule_agrees_with_python_rule_on_every_row(app: object) -> None:
    """`paid_condition` (SQL, for filters), `level_from` (Python) and the direct reads of the
    reader pages (`billing.repository.token_entitlements`) must never disagree."""
    from fastapi import FastAPI
    from sqlmodel import select

    from app.accounts.models import User
    from app.billing.models import Subscription
    from app.billing.repository import paid_condition
    from app.core.db import utcnow

    assert isinstance(app, FastAPI)
    now = utcnow()
    shift = now - NOW
    async with app.state.db.session() as session:
        expected: dict[int, bool] = {}
        for i, (_, facts, level) in enumerate(TABLE):
            user = User(email=f"rule{i}@example.com")
            session.add(user)
            await session.flush()
            assert user.id is not None
            session.add(
                Subscription(
                    user_id=user.id,
                    provider_subscription_id=f"sub_rule_{i}",
                    customer_id=f"cus_{i}",
                    status=facts.status,
                    current_period_end=facts.current_period_end + shift
                    if facts.current_period_end
                    else None,
                    cancel_at_period_end=facts.cancel_at_period_end,
                    past_due_since=facts.past_due_since + shift if facts.past_due_since else None,
                )
            )
            expected[user.id] = level is PAID
        await session.flush()
        rows = await session.exec(select(User.id).where(paid_condition(User.id, now, GRACE)))
        assert {uid for uid in rows if uid in expected} == {
            u for u, paid in expected.items() if paid
        }
    from app.billing.repository import token_entitlements
    from app.core.security import AccessClaims

    for user_id, paid in expected.items():
        claims = AccessClaims(user_id, "reader", "s", now, now + timedelta(minutes=5), "j")
        found = await token_entitlements(app.state.db.reads, claims, grace_days=GRACE.days)
        assert found is not None
        assert (found.level is PAID) == paid, (user_id, found)


def test_tiers_come_from_each_entitling_subscription_and_grant() -> None:
    subs = [
        SubscriptionFacts("active", LATER, False, None, tier_id=1),
        SubscriptionFacts("canceled", LATER, False, None, tier_id=2),
    ]
    grants = [GrantFacts(EARLIER, None, None, tier_id=3), GrantFacts(EARLIER, JUST, None, 4)]
    reader = entitlements_from(subs, grants, now=NOW, grace=GRACE)
    assert reader.tiers == {1, 3}
    assert not reader.every_tier and not reader.lapsed and not reader.payment_failed


def test_a_downgraded_subscription_keeps_its_higher_tier_until_the_paid_period_ends() -> None:
    sub = SubscriptionFacts("active", LATER, False, None, 1, kept_tier_id=2, kept_until=LATER)
    assert entitlements_from([sub], [], now=NOW, grace=GRACE).tiers == {1, 2}
    assert entitlements_from([sub], [], now=LATER, grace=GRACE).tiers == {1}


def test_why_a_reader_has_no_paid_access() -> None:
    lapsed = entitlements_from([sub("canceled")], [], now=NOW, grace=GRACE)
    failed = entitlements_from([sub("past_due", past_due_since=EARLIER)], [], now=NOW, grace=GRACE)
    never = entitlements_from([], [], now=NOW, grace=GRACE)
    assert (lapsed.lapsed, lapsed.payment_failed) == (True, False)
    assert (failed.lapsed, failed.payment_failed) == (False, True)
    assert (never.lapsed, never.payment_failed, never.paid) == (False, False, False)
    # A plan since deleted (no tier) still pays for `paid`, though for no tier by name.
    untiered = entitlements_from([sub("active")], [], now=NOW, grace=GRACE)
    assert untiered.paid and untiered.tiers == frozenset() and not untiered.has_any({1})
