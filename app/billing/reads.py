"""Direct reads of a signed-in reader's entitlement (for the hot reader paths)."""

from __future__ import annotations

from datetime import timedelta

from app.access.levels import (
    AccessLevel,
    GrantFacts,
    SubscriptionFacts,
    level_from,
    subscription_entitles,
)
from app.accounts.models import STAFF_ROLES
from app.accounts.service import issued_after_revocations
from app.core.db import Query, Reads, parse_required_ts, parse_ts, utcnow
from app.core.security import AccessClaims

# The user and their subscriptions in one round trip: one row per subscription, or one row
# with NULLs for a reader who never subscribed.
_READER_SQL = """SELECT u.role, u.disabled, u.deleted_at, u.tokens_valid_after,
       s.status, s.current_period_end, s.cancel_at_period_end, s.past_due_since
FROM "user" u LEFT JOIN subscription s ON s.user_id = u.id
WHERE u.id = :id"""
READER = Query.portable(_READER_SQL)
_GRANTS_SQL = """SELECT starts_at, ends_at, revoked_at FROM comp_grant
WHERE user_id = :id AND revoked_at IS NULL"""
GRANTS = Query.portable(_GRANTS_SQL)


async def token_reader_level(
    reads: Reads, claims: AccessClaims, *, grace_days: int
) -> AccessLevel | None:
    """Give back the level of the token's reader, or None when the token no longer counts.

    The same checks as `accounts.deps` (the user exists, is neither disabled nor deleted,
    and the token was issued after their last revocation) and the same rule as
    `entitlements.user_reader_level` (staff read everything; `level_from` for readers).
    """
    rows = await reads.all(READER, {"id": claims.user_id})
    if not rows:
        return None
    role, disabled, deleted_at, valid_after = rows[0][:4]
    if disabled or deleted_at is not None:
        return None
    if not issued_after_revocations(parse_ts(valid_after), claims.issued_at):
        return None
    if role in STAFF_ROLES:
        return AccessLevel.paid
    now = utcnow()
    grace = timedelta(days=grace_days)
    subs = [
        SubscriptionFacts(status, parse_ts(period_end), bool(at_end), parse_ts(past_due))
        for *_, status, period_end, at_end, past_due in rows
        if status is not None
    ]
    if any(subscription_entitles(s, now, grace) for s in subs):
        return AccessLevel.paid
    grants = [
        GrantFacts(parse_required_ts(starts), parse_ts(ends), parse_ts(revoked))
        for starts, ends, revoked in await reads.all(GRANTS, {"id": claims.user_id})
    ]
    return level_from(subs, grants, now=now, grace=grace)
