"""The entitlement rule as a table: status x period x grace x cancellation, and comps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.access.levels import AccessLevel, GrantFacts, SubscriptionFacts, level_from

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
    reader pages (`billing.repository.token_reader_level`) must never disagree."""
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
    from app.billing.repository import token_reader_level
    from app.core.security import AccessClaims

    for user_id, paid in expected.items():
        claims = AccessClaims(user_id, "reader", "s", now, now + timedelta(minutes=5), "j")
        found = await token_reader_level(app.state.db.reads, claims, grace_days=GRACE.days)
        assert (found is PAID) == paid, (user_id, found)
