"""Direct reads of a reader's entitlement (for the hot reader paths), by `level_from`."""

from __future__ import annotations

from datetime import timedelta

from app.accounts.models import STAFF_ROLES
from app.billing.entitlements import (
    AccessLevel,
    GrantFacts,
    SubscriptionFacts,
    level_from,
    subscription_entitles,
)
from app.core.db import utcnow
from app.core.reads import Query, Reads, parse_required_ts, parse_ts

_SUBS_SQL = """SELECT status, current_period_end, cancel_at_period_end, past_due_since
FROM subscription WHERE user_id = :id"""
SUBSCRIPTIONS = Query(sqlite=_SUBS_SQL, postgres=_SUBS_SQL)
_GRANTS_SQL = """SELECT starts_at, ends_at, revoked_at FROM comp_grant
WHERE user_id = :id AND revoked_at IS NULL"""
GRANTS = Query(sqlite=_GRANTS_SQL, postgres=_GRANTS_SQL)


async def reader_level(reads: Reads, user_id: int, role: str, *, grace_days: int) -> AccessLevel:
    """Give back a signed-in reader's level; the same rule as `entitlements.access_level`."""
    if role in STAFF_ROLES:
        return AccessLevel.paid
    now = utcnow()
    grace = timedelta(days=grace_days)
    subs = [
        SubscriptionFacts(status, parse_ts(period_end), bool(at_end), parse_ts(past_due))
        for status, period_end, at_end, past_due in await reads.all(SUBSCRIPTIONS, {"id": user_id})
    ]
    if any(subscription_entitles(s, now, grace) for s in subs):
        return AccessLevel.paid
    grants = [
        GrantFacts(parse_required_ts(starts), parse_ts(ends), parse_ts(revoked))
        for starts, ends, revoked in await reads.all(GRANTS, {"id": user_id})
    ]
    return level_from(subs, grants, now=now, grace=grace)
