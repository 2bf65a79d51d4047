"""Single-use emailed tokens: magic-link sign-in, email verification, password reset."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import emails
from app.accounts import service as accounts
from app.accounts.errors import AccountDisabled, TokenExpired, TokenRejected, TokenUsed
from app.accounts.kit import AuthKit
from app.accounts.models import EmailToken, TokenPurpose, User
from app.core.db import utcnow
from app.core.security import hash_opaque_token, new_opaque_token


def _lifetime(kit: AuthKit, purpose: TokenPurpose) -> timedelta:
    s = kit.settings
    return {
        TokenPurpose.magic_link: timedelta(minutes=s.magic_link_minutes),
        TokenPurpose.password_reset: timedelta(minutes=s.password_reset_minutes),
        TokenPurpose.verify_email: timedelta(hours=s.email_verify_hours),
        TokenPurpose.email_change: timedelta(hours=s.email_verify_hours),
        TokenPurpose.newsletter_confirm: timedelta(hours=s.email_verify_hours),
    }[purpose]


def new_token(
    session: AsyncSession,
    kit: AuthKit,
    purpose: TokenPurpose,
    *,
    email: str,
    user_id: int | None,
    accepted_terms: bool = False,
    consent_ip: str | None = None,
) -> str:
    """Store a new single-use token (hashed) and give back its raw value for the email."""
    raw = new_opaque_token()
    now = utcnow()
    session.add(
        EmailToken(
            purpose=purpose.value,
            token_hash=hash_opaque_token(raw),
            user_id=user_id,
            email=email,
            accepted_terms=accepted_terms,
            consent_ip=consent_ip,
            created_at=now,
            expires_at=now + _lifetime(kit, purpose),
        )
    )
    return raw


async def consume(session: AsyncSession, token: str, *purposes: TokenPurpose) -> EmailToken:
    """Mark a token used and give it back; raise a TokenRejected kind when it cannot be used."""
    token_hash = hash_opaque_token(token)
    now = utcnow()
    allowed = [purpose.value for purpose in purposes]
    result = await session.exec(
        update(EmailToken)
        .where(
            col(EmailToken.token_hash) == token_hash,
            col(EmailToken.purpose).in_(allowed),
            col(EmailToken.used_at).is_(None),
            col(EmailToken.expires_at) > now,
        )
        .values(used_at=now)
    )
    row = (
        await session.exec(select(EmailToken).where(EmailToken.token_hash == token_hash))
    ).first()
    if row is None or row.purpose not in allowed:
        raise TokenRejected("This link is not valid.")
    if result.rowcount == 1:
        return row
    if row.used_at is not None:
        raise TokenUsed("This link was already used.")
    raise TokenExpired("This link has expired; ask for a new one.")


async def request_magic_link(
    session: AsyncSession, kit: AuthKit, *, email: str, accept_terms: bool, ip: str | None
) -> EmailMessage | None:
    """Give back the sign-in email to send, or None when none may go (callers answer alike)."""
    user = await accounts.user_by_email(session, email)
    if user is not None:
        if user.disabled:
            return None
        raw = new_token(session, kit, TokenPurpose.magic_link, email=email, user_id=user.id)
        return emails.magic_link(kit.settings, email, raw, new_account=False)
    if not (kit.settings.signup_open and accept_terms):
        return None
    raw = new_token(
        session,
        kit,
        TokenPurpose.magic_link,
        email=email,
        user_id=None,
        accepted_terms=True,
        consent_ip=ip,
    )
    return emails.magic_link(kit.settings, email, raw, new_account=True)


async def sign_in_with_magic_link(
    session: AsyncSession, kit: AuthKit, *, token: str
) -> accounts.IssuedTokens:
    """Consume a magic link and open a session, creating the account on a sign-up link."""
    row = await consume(session, token, TokenPurpose.magic_link)
    user = await user_for_token(session, row)
    if user is None:
        user = await accounts.user_by_email(session, row.email)
    if user is None:
        if not row.accepted_terms:
            raise TokenRejected("This link is not valid.")
        user = await accounts.create_user(
            session, kit, email=row.email, password=None, email_verified=True
        )
        accounts.record_consents(
            session, kit, user_id=user.id, email=row.email, ip=row.consent_ip, source="magic_link"
        )
    if user.disabled:
        raise AccountDisabled("This account is disabled.")
    # Following the link proves the reader controls the address.
    user.email_verified = True
    user.last_login_at = utcnow()
    session.add(user)
    return await accounts.open_session(session, kit, user)


async def user_for_token(session: AsyncSession, row: EmailToken) -> User | None:
    if row.user_id is None:
        return None
    user = await session.get(User, row.user_id)
    return user if user is not None and user.deleted_at is None else None


def verification_email(session: AsyncSession, kit: AuthKit, user: User) -> EmailMessage:
    """Give back the email that asks the user to confirm their address."""
    raw = new_token(session, kit, TokenPurpose.verify_email, email=user.email, user_id=user.id)
    return emails.verify_email(kit.settings, user.email, raw)


async def verify_email(session: AsyncSession, *, token: str) -> User:
    """Confirm an address: the account's own, or a new one it asked to change to."""
    row = await consume(session, token, TokenPurpose.verify_email, TokenPurpose.email_change)
    user = await user_for_token(session, row)
    if user is None:
        raise TokenRejected("This link is not valid.")
    if row.purpose == TokenPurpose.email_change.value:
        if await accounts.user_by_email(session, row.email) is not None:
            raise TokenRejected("That address is now used by another account.")
        user.email = row.email
    elif row.email != user.email:
        raise TokenRejected("This link is for an address the account no longer uses.")
    user.email_verified = True
    session.add(user)
    return user


async def request_password_reset(
    session: AsyncSession, kit: AuthKit, *, email: str
) -> EmailMessage | None:
    """Give back the reset email to send, or None for unknown or disabled accounts."""
    user = await accounts.user_by_email(session, email)
    if user is None or user.disabled:
        return None
    raw = new_token(session, kit, TokenPurpose.password_reset, email=email, user_id=user.id)
    return emails.password_reset(kit.settings, email, raw)


async def reset_password(
    session: AsyncSession, kit: AuthKit, *, token: str, new_password: str
) -> User:
    """Set a new password from a reset link and close every existing session."""
    accounts.check_password_rules(kit, new_password)
    row = await consume(session, token, TokenPurpose.password_reset)
    user = await user_for_token(session, row)
    if user is None:
        raise TokenRejected("This link is not valid.")
    user.password_hash = await kit.hasher.hash(new_password)
    # The link reached their inbox, so the address is proven too.
    user.email_verified = True
    await accounts.revoke_all_sessions(session, user)
    return user
