"""Credentials and sessions: sign-up, login, rotating refresh tokens, logout."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as repo
from app.accounts.auth_context import AuthContext
from app.accounts.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    RefreshRejected,
    RefreshReused,
    SignupClosed,
    TermsNotAccepted,
    WeakPassword,
)
from app.accounts.models import (
    Consent,
    ConsentDocument,
    RefreshToken,
    Role,
    User,
    issued_after_revocations,
)
from app.core.db import adopt, utcnow
from app.core.errors import NotFound
from app.core.security import hash_opaque_token, new_opaque_token


@dataclass(frozen=True)
class IssuedTokens:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """Give back the live (not deleted) user with this normalised email, if any."""
    return await repo.user_by_email(session, email)


async def live_member(session: AsyncSession, user_id: int) -> User:
    """Give back the account with this id unless it is unknown or deleted (then NotFound)."""
    user = await repo.get_user(session, user_id)
    if user is None or user.deleted_at is not None:
        raise NotFound("No such member.", code="member_not_found")
    return user


def check_password_rules(auth: AuthContext, password: str) -> None:
    """Raise WeakPassword unless the password fits the length rules."""
    settings = auth.settings
    if len(password) < settings.password_min_length:
        raise WeakPassword(f"Use at least {settings.password_min_length} characters.")
    if len(password.encode("utf-8", "surrogatepass")) > settings.password_max_bytes:
        raise WeakPassword(f"Use at most {settings.password_max_bytes} bytes.")


def record_consents(
    session: AsyncSession,
    auth: AuthContext,
    *,
    user_id: int | None,
    email: str,
    ip: str | None,
    source: str,
) -> None:
    """Record acceptance of the current terms and privacy policy."""
    versions = {
        ConsentDocument.terms: auth.settings.terms_version,
        ConsentDocument.privacy: auth.settings.privacy_version,
    }
    for document, version in versions.items():
        session.add(
            Consent(
                user_id=user_id,
                email=email,
                document=document.value,
                version=version,
                ip=ip,
                source=source,
            )
        )


async def create_user(
    session: AsyncSession,
    auth: AuthContext,
    *,
    email: str,
    password: str | None,
    display_name: str = "",
    role: Role = Role.reader,
    email_verified: bool = False,
) -> User:
    """Create a user; raise EmailTaken if the address is in use."""
    password_hash = None
    if password is not None:
        check_password_rules(auth, password)
        # Hashed before the first statement, so no write lock is held while it runs.
        password_hash = await auth.hasher.hash(password)
    if await user_by_email(session, email) is not None:
        raise EmailTaken("This email cannot be used to sign up.")
    user = User(
        email=email,
        password_hash=password_hash,
        display_name=display_name.strip(),
        role=role.value,
        email_verified=email_verified,
    )
    session.add(user)
    await session.flush()
    return user


async def signup(
    session: AsyncSession,
    auth: AuthContext,
    *,
    email: str,
    password: str,
    display_name: str,
    accept_terms: bool,
    ip: str | None,
) -> User:
    """Create a reader account with recorded consent (while sign-up is open)."""
    if not auth.settings.signup_open:
        raise SignupClosed("New accounts are not being created.")
    if not accept_terms:
        raise TermsNotAccepted("Sign-up needs accept_terms: true.")
    user = await create_user(
        session, auth, email=email, password=password, display_name=display_name
    )
    record_consents(session, auth, user_id=user.id, email=email, ip=ip, source="signup")
    return user


async def login(
    read: AsyncSession, session: AsyncSession, auth: AuthContext, *, email: str, password: str
) -> IssuedTokens:
    """Check the password and open a session; unknown emails cost the same time as wrong ones.

    The account is read and the password checked before the write session's first
    statement, so no write lock is held while argon2 runs.
    """
    user = await user_by_email(read, email)
    ok, new_hash = await auth.hasher.verify(password, user.password_hash if user else None)
    if user is None or not ok:
        raise InvalidCredentials("Email or password is wrong.")
    if user.disabled:
        raise AccountDisabled("This account is disabled.")
    adopt(session, user)
    if new_hash:
        user.password_hash = new_hash
    user.last_login_at = utcnow()
    session.add(user)
    return await open_session(session, auth, user)


async def open_session(
    session: AsyncSession, auth: AuthContext, user: User, *, family_id: str | None = None
) -> IssuedTokens:
    """Issue an access token and a refresh token (a new family unless one is given)."""
    if user.id is None:
        raise ValueError("open_session needs a flushed user")
    family = family_id or uuid.uuid4().hex
    raw = new_opaque_token()
    now = utcnow()
    session.add(
        RefreshToken(
            user_id=user.id,
            family_id=family,
            token_hash=hash_opaque_token(raw),
            created_at=now,
            expires_at=now + timedelta(days=auth.settings.refresh_token_days),
        )
    )
    access = auth.codec.issue(user_id=user.id, role=user.role, session_id=family, now=now)
    return IssuedTokens(user, access, raw, auth.codec.lifetime_seconds)


async def refresh(session: AsyncSession, auth: AuthContext, *, refresh_token: str) -> IssuedTokens:
    """Rotate a refresh token; a token presented twice revokes its whole family."""
    token_hash = hash_opaque_token(refresh_token)
    now = utcnow()
    claimed = await repo.claim_refresh_token(session, token_hash, now)
    row = await repo.refresh_token_by_hash(session, token_hash)
    if row is None:
        raise RefreshRejected("Unknown refresh token.")
    if not claimed:
        await revoke_family(session, row.family_id)
        raise RefreshReused("This refresh token was already used; all its sessions are closed.")
    if row.expires_at <= now:
        raise RefreshRejected("The refresh token has expired.")
    user = await repo.get_user(session, row.user_id)
    if user is None or user.disabled or user.deleted_at is not None:
        raise RefreshRejected("The account is not available.")
    if user.tokens_valid_after and row.created_at < user.tokens_valid_after:
        raise RefreshRejected("This session was closed.")
    return await open_session(session, auth, user, family_id=row.family_id)


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    """Revoke every refresh token of one session family."""
    await repo.revoke_refresh_family(session, family_id, utcnow())


async def revoke_all_sessions(session: AsyncSession, user: User) -> None:
    """Close every session of the user: refresh tokens revoked, access tokens refused."""
    now = utcnow()
    await repo.revoke_user_refresh_tokens(session, user.id, now)
    user.tokens_valid_after = now
    session.add(user)


async def logout(
    session: AsyncSession, *, user: User, session_id: str, refresh_token: str | None
) -> None:
    """Revoke the caller's session family, and the family of a refresh token they present."""
    await revoke_family(session, session_id)
    if refresh_token:
        row = await repo.refresh_token_by_hash(session, hash_opaque_token(refresh_token))
        if row is not None and row.user_id == user.id:
            await revoke_family(session, row.family_id)


def token_still_valid(user: User, issued_at: datetime) -> bool:
    """Tell whether an access token issued at `issued_at` survives the user's revocations."""
    return issued_after_revocations(user.tokens_valid_after, issued_at)
