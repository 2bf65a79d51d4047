"""Direct reads of who holds an access token (for the hot reader paths)."""

from __future__ import annotations

from app.accounts.service import issued_after_revocations
from app.core.reads import Query, Reads, parse_ts
from app.core.security import AccessClaims

_USER_SQL = 'SELECT role, disabled, deleted_at, tokens_valid_after FROM "user" WHERE id = :id'
USER = Query(sqlite=_USER_SQL, postgres=_USER_SQL)


async def token_holder_role(reads: Reads, claims: AccessClaims) -> str | None:
    """Give back the role of the token's user, or None when the token no longer counts.

    The same checks as `deps._authenticate`: the user exists, is neither disabled nor
    deleted, and the token was issued after their last revocation.
    """
    row = await reads.one(USER, {"id": claims.user_id})
    if row is None:
        return None
    role, disabled, deleted_at, valid_after = row
    if disabled or deleted_at is not None:
        return None
    if not issued_after_revocations(parse_ts(valid_after), claims.issued_at):
        return None
    return str(role)
