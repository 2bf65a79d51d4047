"""Every statement the accounts domain runs, the account reads other domains use, and the
expressions and SQL fragments through which other domains' statements name an account."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ScalarSelect, delete, exists, func, insert, or_, update
from sqlalchemy import select as core_select
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import (
    STAFF_ROLES,
    Consent,
    ConsentDocument,
    EmailToken,
    RefreshToken,
    Role,
    User,
    issued_after_revocations,
)
from app.core.db import as_utc, parse_ts, pk
from app.core.mail_outbox import OutboxMessage
from app.core.pagination import newest_first

# --- accounts in other domains' statements --------------------------------------------------
# Another domain's statement that needs an account's data takes it from here, so the "user"
# table and what its columns mean are spelled in this module only.


def display_name_of(user_id: Any) -> ScalarSelect[str]:
    """SQL: the display name of the account whose id is `user_id` (a column or parameter)."""
    return core_select(col(User.display_name)).where(col(User.id) == user_id).scalar_subquery()


def live_account_id(user_id: Any) -> ScalarSelect[int]:
    """SQL: `user_id` if that account exists and is not deleted, else NULL."""
    return (
        core_select(col(User.id))
        .where(col(User.id) == user_id, col(User.deleted_at).is_(None))
        .scalar_subquery()
    )


def staff_condition(user_id: Any) -> ColumnElement[bool]:
    """SQL: the account whose id is `user_id` has a staff role."""
    return exists().where(col(User.id) == user_id, col(User.role).in_(sorted(STAFF_ROLES)))


# Raw SQL for one-statement direct reads: the account joins as `u` (ACCOUNT_FROM_SQL, its id
# ACCOUNT_ID_SQL), and the reader's statement selects the columns it needs from below.
ACCOUNT_FROM_SQL = '"user" u'
ACCOUNT_ID_SQL = "u.id"
# The columns `token_counts_for` reads, in its order (role first).
ACCOUNT_STATE_SQL = "u.role, u.disabled, u.deleted_at, u.tokens_valid_after"


def token_counts_for(columns: Sequence[Any], issued_at: datetime) -> bool:
    """Tell whether a token issued at `issued_at` still counts, from ACCOUNT_STATE_SQL's
    columns as read: the account is neither disabled nor deleted, and the token postdates
    its last revocation (the checks `accounts.deps` makes on the entity)."""
    _, disabled, deleted_at, valid_after = columns[:4]
    if disabled or deleted_at is not None:
        return False
    return issued_after_revocations(parse_ts(valid_after), issued_at)


# --- the accounts domain's own statements ---------------------------------------------------


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    """The account with this id, deleted ones included."""
    return await session.get(User, user_id)


async def users_by_ids(session: AsyncSession, ids: Sequence[int]) -> Sequence[User]:
    """The accounts with these ids, deleted ones included, in no particular order."""
    return (await session.exec(select(User).where(col(User.id).in_(ids)))).all()


async def display_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    """Each account's display name by id, as stored."""
    rows = await session.exec(select(User.id, User.display_name).where(col(User.id).in_(list(ids))))
    return {pk(i): name for i, name in rows}


async def consents_for(session: AsyncSession, user_id: int, address: str) -> Sequence[Consent]:
    """Consents given by the account or from its address."""
    query = select(Consent).where(
        or_(col(Consent.user_id) == user_id, col(Consent.email) == address)
    )
    return (await session.exec(query)).all()


async def refresh_tokens_of(session: AsyncSession, user_id: int) -> Sequence[RefreshToken]:
    """Every refresh token the account was issued, revoked ones included."""
    return (await session.exec(select(RefreshToken).where(RefreshToken.user_id == user_id))).all()


async def erase_personal_rows(session: AsyncSession, user_id: int, address: str) -> None:
    """Delete the links, refresh tokens and consents of an account or of its address."""
    by_account_or_address = [
        (EmailToken, or_(col(EmailToken.user_id) == user_id, col(EmailToken.email) == address)),
        (RefreshToken, col(RefreshToken.user_id) == user_id),
        # Consents prove what a person agreed to; with the person gone they are personal data.
        (Consent, or_(col(Consent.user_id) == user_id, col(Consent.email) == address)),
    ]
    for model, condition in by_account_or_address:
        await session.exec(delete(model).where(condition))


async def drop_queued_mail_to(session: AsyncSession, address: str) -> None:
    """Delete the outbox's messages to this address, sent or not."""
    await session.exec(delete(OutboxMessage).where(col(OutboxMessage.to_address) == address))


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The account holding this normalised email, if any."""
    return (await session.exec(select(User).where(User.email == email))).first()


async def claim_refresh_token(session: AsyncSession, token_hash: str, now: datetime) -> int:
    """Mark the refresh token used if it is neither used nor revoked; 1 when this call did."""
    # One conditional UPDATE decides the race: of two concurrent refreshes, one wins.
    statement = (
        update(RefreshToken)
        .where(
            col(RefreshToken.token_hash) == token_hash,
            col(RefreshToken.used_at).is_(None),
            col(RefreshToken.revoked_at).is_(None),
        )
        .values(used_at=now)
    )
    return int((await session.exec(statement)).rowcount)


async def refresh_token_by_hash(session: AsyncSession, token_hash: str) -> RefreshToken | None:
    """The refresh token with this hash, in any state."""
    query = select(RefreshToken).where(RefreshToken.token_hash == token_hash)
    return (await session.exec(query)).first()


async def revoke_refresh_family(session: AsyncSession, family_id: str, now: datetime) -> None:
    """Revoke the unrevoked refresh tokens of one session family."""
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def revoke_user_refresh_tokens(
    session: AsyncSession, user_id: int | None, now: datetime
) -> None:
    """Revoke every unrevoked refresh token of the account."""
    await session.exec(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=now)
    )


async def claim_email_token(
    session: AsyncSession, token_hash: str, purposes: Sequence[str], now: datetime
) -> int:
    """Mark the link used if it has one of these purposes, is unused and unexpired; 1 if so."""
    statement = (
        update(EmailToken)
        .where(
            col(EmailToken.token_hash) == token_hash,
            col(EmailToken.purpose).in_(purposes),
            col(EmailToken.used_at).is_(None),
            col(EmailToken.expires_at) > now,
        )
        .values(used_at=now)
    )
    return int((await session.exec(statement)).rowcount)


async def email_token_by_hash(session: AsyncSession, token_hash: str) -> EmailToken | None:
    """The emailed token with this hash, in any state."""
    query = select(EmailToken).where(EmailToken.token_hash == token_hash)
    return (await session.exec(query)).first()


async def usable_email_token(
    session: AsyncSession, token_hash: str, purpose: str, now: datetime
) -> EmailToken | None:
    """The emailed token with this hash and purpose if it is unused and unexpired."""
    query = select(EmailToken).where(
        EmailToken.token_hash == token_hash,
        EmailToken.purpose == purpose,
        col(EmailToken.used_at).is_(None),
        col(EmailToken.expires_at) > now,
    )
    return (await session.exec(query)).first()


async def void_links(
    session: AsyncSession, user_id: int | None, address: str, purposes: Sequence[str], now: datetime
) -> None:
    """Mark used every unused link of these purposes held by the account or sent to its address."""
    await session.exec(
        update(EmailToken)
        .where(
            or_(col(EmailToken.user_id) == user_id, col(EmailToken.email) == address),
            col(EmailToken.purpose).in_(purposes),
            col(EmailToken.used_at).is_(None),
        )
        .values(used_at=now)
    )


# Statements the staff console runs (admin)

# Conditions over the account's id column that another domain defines (billing's paid rule, a
# newsletter's followers, the console's labels), given the column to compare with.
MemberConditions = Callable[[Any], Sequence[ColumnElement[bool]]]


async def members_page(
    session: AsyncSession,
    *,
    q: str | None,
    role: str | None,
    created_from: datetime | None,
    created_to: datetime | None,
    where: MemberConditions,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    """One page of live accounts matching the search, newest first."""
    conditions: list[ColumnElement[bool]] = [col(User.deleted_at).is_(None)]
    if q:
        like = f"%{q.strip().lower()}%"
        conditions.append(or_(col(User.email).like(like), func.lower(User.display_name).like(like)))
    if role:
        conditions.append(col(User.role) == role)
    if created_from:
        conditions.append(col(User.created_at) >= as_utc(created_from))
    if created_to:
        conditions.append(col(User.created_at) < as_utc(created_to))
    query = select(User).where(*conditions, *where(User.id))
    return await newest_first(session, query, col(User.id), limit=limit, cursor=cursor)


async def count_admins_locked(session: AsyncSession) -> int:
    """Give back how many working admins there are, holding their rows until commit.

    Locked, so two admins demoting or disabling each other at once cannot both see "two":
    the second waits for the first, then counts again (PostgreSQL; SQLite lets one writer in).
    """
    rows = await session.exec(
        select(User.id)
        .where(
            User.role == Role.admin.value,
            col(User.disabled).is_(False),
            col(User.deleted_at).is_(None),
        )
        .with_for_update()
    )
    return len(rows.all())


async def consents_of(session: AsyncSession, user_id: int) -> Sequence[Consent]:
    """The member's recorded consents."""
    return (await session.exec(select(Consent).where(Consent.user_id == user_id))).all()


async def count_readers(session: AsyncSession, where: MemberConditions | None = None) -> int:
    """How many live reader accounts there are (matching `where`, when given)."""
    conditions = [col(User.deleted_at).is_(None), col(User.role) == Role.reader.value]
    if where is not None:
        conditions += where(User.id)
    result = await session.exec(select(func.count()).select_from(User).where(*conditions))
    return int(result.one())


async def signups_by_source(session: AsyncSession) -> dict[str, int]:
    """Sign-ups (accounts and newsletter) counted by where their consent was given."""
    rows = await session.exec(
        select(Consent.source, func.count())
        .where(Consent.document == ConsentDocument.terms.value)
        .group_by(col(Consent.source))
    )
    return dict(sorted(rows.all()))


async def accounts_by_email(
    session: AsyncSession, emails: Sequence[str]
) -> Sequence[tuple[int | None, str, datetime | None]]:
    """(id, email, deleted at) of the accounts holding these normalised emails."""
    query = select(User.id, User.email, User.deleted_at).where(col(User.email).in_(emails))
    return (await session.exec(query)).all()


async def insert_users(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert these new accounts in one multi-row INSERT; each one's id by its email."""
    if not rows:
        return {}
    query = insert(User).returning(col(User.email), col(User.id))
    return dict((await session.exec(query, params=rows)).tuples().all())


async def insert_consents(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record consents, one multi-row INSERT (nothing refers back to them)."""
    if rows:
        await session.exec(insert(Consent), params=rows)


async def live_accounts_after(session: AsyncSession, after: int, limit: int) -> list[User]:
    """Up to `limit` live accounts with ids above `after`, by id."""
    query = (
        select(User)
        .where(col(User.id) > after, col(User.deleted_at).is_(None))
        .order_by(col(User.id))
        .limit(limit)
    )
    return list((await session.exec(query)).all())
