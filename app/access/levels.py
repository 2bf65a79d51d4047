"""Reader levels: the one rule that says what a reader's subscriptions and grants entitle.

Paid access comes from an entitling subscription or a complimentary grant; the rule is a
pure function (`level_from`) so it can be tested as a table; billing's reads feed it from
the database. Unknown subscription statuses grant nothing (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

log = logging.getLogger("broadsheet.access")

ENTITLING = frozenset({"active", "trialing"})
KNOWN_STATUSES = frozenset(
    {"active", "trialing", "past_due", "canceled", "unpaid", "incomplete",
     "incomplete_expired", "paused"}
)  # fmt: skip


class AccessLevel(IntEnum):
    anonymous = 0
    member = 1
    paid = 2

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class SubscriptionFacts:
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    past_due_since: datetime | None


@dataclass(frozen=True)
class GrantFacts:
    starts_at: datetime
    ends_at: datetime | None
    revoked_at: datetime | None


def subscription_entitles(sub: SubscriptionFacts, now: datetime, grace: timedelta) -> bool:
    """Tell whether one subscription gives paid access at `now`."""
    if sub.status in ENTITLING:
        # A canceled-at-period-end subscription runs until the period ends; a period that is
        # long over means we missed the cancellation, so it no longer counts.
        return sub.current_period_end is None or now < sub.current_period_end + grace
    if sub.status == "past_due":
        started = sub.past_due_since or sub.current_period_end
        return started is not None and now < started + grace
    if sub.status not in KNOWN_STATUSES:
        log.warning("unknown subscription status %r treated as not entitling", sub.status)
    return False


def grant_entitles(grant: GrantFacts, now: datetime) -> bool:
    return (
        grant.revoked_at is None
        and grant.starts_at <= now
        and (grant.ends_at is None or now < grant.ends_at)
    )


def level_from(
    subscriptions: Sequence[SubscriptionFacts],
    grants: Sequence[GrantFacts],
    *,
    now: datetime,
    grace: timedelta,
) -> AccessLevel:
    """Give back a signed-in reader's level from their subscriptions and grants."""
    if any(subscription_entitles(s, now, grace) for s in subscriptions):
        return AccessLevel.paid
    if any(grant_entitles(g, now) for g in grants):
        return AccessLevel.paid
    return AccessLevel.member
