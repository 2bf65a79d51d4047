"""Single-use emailed tokens: magic-link sign-in, email verification, password reset, email
change, and the outbox builders that write those emails.

Asking for a sign-in link or a reset costs a request the same whatever the address: it only
records the request (app.core.mail_outbox); the worker's builder then finds the account, makes
the token and writes the email, or sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import account_mail
from app.accounts import repository as repo
from app.accounts import service as accounts
from app.accounts.auth_context import AuthContext
from app.accounts.errors import AccountDisabled, TokenExpired, TokenRejected, TokenUsed
from app.accounts.models import EmailToken, TokenPurpose, User
from app.core import mail_outbox
from app.core.config import Settings
from app.core.db import utcnow
from app.core.security import hash_opaque_token, new_opaque_token

# What a change of password or address makes void: every link that signs in or changes the
# account. Email confirmations stay (they only prove an address the account already uses).
ACCOUNT_LINKS = (TokenPurpose.magic_link, TokenPurpose.password_reset, TokenPurpose.email_change)


def _lifetime(settings: Settings, purpose: TokenPurpose) -> timedelta:
    return {
        TokenPurpose.magic_link: timedelta(minutes=settings.magic_link_minutes),
        TokenPurpose.password_reset: timedelta(minutes=settings.password_reset_minutes),
        TokenPurpose.verify_email: timedelta(hours=settings.email_verify_hours),
        TokenPurpose.email_change: timedelta(hours=settings.email_verify_hours),
        TokenPurpose.newsletter_confirm: timedelta(hours=settings.email_verify_hours),
    }[purpose]


def new_token(
    session: AsyncSession,
    settings: Settings,
    purpose: TokenPurpose,
    *,
    email: str,
    user_id: int | None,
    accepted_terms: bool = False,
    consent_ip: str | None = None,
    data: dict[str, Any] | None = None,
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
            data=data,
            created_at=now,
            expires_at=now + _lifetime(settings, purpose),
        )
    )
    return raw


async def consume(session: AsyncSession, token: str, *purposes: TokenPurpose) -> EmailToken:
    """Mark a token used and give it back; raise a TokenRejected kind when it cannot be used."""
    token_hash = hash_opaque_token(token)
    now = utcnow()
    allowed = [purpose.value for purpose in purposes]
    claimed = await repo.claim_email_token(session, token_hash, allowed, now)
    row = await repo.email_token_by_hash(session, token_hash)
    if row is None or row.purpose not in allowed:
        raise TokenRejected("This link is not valid.")
    if claimed == 1:
        return row
    if row.used_at is not None:
        raise TokenUsed("This link was already used.")
    raise TokenExpired("This link has expired; ask for a new one.")


async def usable(session: AsyncSession, token: str, purpose: TokenPurpose) -> EmailToken | None:
    """Give back the token if it could be consumed now, without consuming it."""
    return await repo.usable_email_token(session, hash_opaque_token(token), purpose.value, utcnow())


async def end_links(session: AsyncSession, user: User, *purposes: TokenPurpose) -> None:
    """Make every unused link of the account void (by its id, or sent to its address)."""
    await repo.void_links(session, user.id, user.email, [p.value for p in purposes], utcnow())


def request_magic_link(
    session: AsyncSession, *, email: str, accept_terms: bool, display_name: str, ip: str | None
) -> None:
    """Record that `email` asked for a sign-in (or, with the terms accepted, sign-up) link."""
    mail_outbox.request(
        session,
        "magic_link",
        email,
        {"email": email, "accept_terms": accept_terms, "display_name": display_name, "ip": ip},
    )


async def build_magic_link(
    session: AsyncSession, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """The sign-in email for a requested address, a sign-up email, or None (nothing goes)."""
    email = str(payload["email"])
    user = await accounts.user_by_email(session, email)
    if user is not None:
        if user.disabled:
            return None
        raw = new_token(session, settings, TokenPurpose.magic_link, email=email, user_id=user.id)
        return account_mail.magic_link(settings, email, raw, new_account=False)
    if not (settings.signup_open and payload.get("accept_terms")):
        return None
    raw = new_token(
        session,
        settings,
        TokenPurpose.magic_link,
        email=email,
        user_id=None,
        accepted_terms=True,
        consent_ip=payload.get("ip"),
        data={"display_name": payload.get("display_name") or ""},
    )
    return account_mail.magic_link(settings, email, raw, new_account=True)


async def sign_in_with_magic_link(
    session: AsyncSession, auth: AuthContext, *, token: str
) -> accounts.IssuedTokens:
    """Consume a magic link and open a session, creating the account on a sign-up link."""
    row = await consume(session, token, TokenPurpose.magic_link)
    user = await user_for_token(session, row)
    if user is not None and user.email != row.email:
        raise TokenRejected("This link is for an address the account no longer uses.")
    if user is None:
        user = await accounts.user_by_email(session, row.email)
    if user is None:
        if not row.accepted_terms:
            raise TokenRejected("This link is not valid.")
        user = await accounts.create_user(
            session,
            auth,
            email=row.email,
            password=None,
            display_name=str((row.data or {}).get("display_name", "")),
            email_verified=True,
        )
        accounts.record_consents(
            session, auth, user_id=user.id, email=row.email, ip=row.consent_ip, source="magic_link"
        )
    if user.disabled:
        raise AccountDisabled("This account is disabled.")
    if not user.email_verified:
        await claim_unverified_account(session, user)
    user.last_login_at = utcnow()
    session.add(user)
    return await accounts.open_session(session, auth, user)


async def claim_unverified_account(session: AsyncSession, user: User) -> None:
    """The owner of the address has just proven it: whoever made the account with a password
    before them (a squatter, perhaps) loses that password and every session."""
    user.password_hash = None
    user.email_verified = True
    await accounts.revoke_all_sessions(session, user)


async def user_for_token(session: AsyncSession, row: EmailToken) -> User | None:
    if row.user_id is None:
        return None
    user = await repo.get_user(session, row.user_id)
    return user if user is not None and user.deleted_at is None else None


def verification_email(session: AsyncSession, settings: Settings, user: User) -> EmailMessage:
    """Give back the email that asks the user to confirm their address."""
    raw = new_token(session, settings, TokenPurpose.verify_email, email=user.email, user_id=user.id)
    return account_mail.verify_email(settings, user.email, raw)


async def verify_email(session: AsyncSession, settings: Settings, *, token: str) -> User:
    """Confirm an address: the account's own, or a new one it asked to change to."""
    row = await consume(session, token, TokenPurpose.verify_email, TokenPurpose.email_change)
    user = await user_for_token(session, row)
    if user is None:
        raise TokenRejected("This link is not valid.")
    if row.purpose == TokenPurpose.email_change.value:
        if await accounts.user_by_email(session, row.email) is not None:
            raise TokenRejected("That address is now used by another account.")
        old = user.email
        await end_links(session, user, *ACCOUNT_LINKS)
        user.email = row.email
        mail_outbox.enqueue(session, settings, account_mail.email_changed(settings, old, row.email))
    elif row.email != user.email:
        raise TokenRejected("This link is for an address the account no longer uses.")
    user.email_verified = True
    session.add(user)
    return user


def request_password_reset(session: AsyncSession, *, email: str) -> None:
    """Record that `email` asked for a password reset (see the module docstring)."""
    mail_outbox.request(session, "password_reset", email, {"email": email})


async def build_password_reset(
    session: AsyncSession, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """The reset email for a requested address, or None for unknown or disabled accounts."""
    email = str(payload["email"])
    user = await accounts.user_by_email(session, email)
    if user is None or user.disabled:
        return None
    raw = new_token(session, settings, TokenPurpose.password_reset, email=email, user_id=user.id)
    return account_mail.password_reset(settings, email, raw)


def request_email_change(session: AsyncSession, user: User, new_email: str) -> None:
    """Record that the account asked to move to `new_email`; answered alike whether or not
    another account has that address (its builder then sends nothing)."""
    mail_outbox.request(
        session, "email_change", new_email, {"user_id": user.id, "email": new_email}
    )


async def build_email_change(
    session: AsyncSession, settings: Settings, payload: dict[str, Any]
) -> EmailMessage | None:
    """The confirmation for a new address, or None when it is taken or the account is gone."""
    email = str(payload["email"])
    user = await repo.get_user(session, int(payload["user_id"]))
    if user is None or user.deleted_at is not None or user.disabled:
        return None
    if await accounts.user_by_email(session, email) is not None:
        return None
    raw = new_token(session, settings, TokenPurpose.email_change, email=email, user_id=user.id)
    return account_mail.email_change(settings, email, raw)


async def reset_password(
    session: AsyncSession, auth: AuthContext, *, token: str, new_password: str
) -> User:
    """Set a new password from a reset link and close every existing session and link."""
    accounts.check_password_rules(auth, new_password)
    # Hashed before the first statement, so no write lock is held while it runs.
    new_hash = await auth.hasher.hash(new_password)
    row = await consume(session, token, TokenPurpose.password_reset)
    user = await user_for_token(session, row)
    if user is None:
        raise TokenRejected("This link is not valid.")
    if user.email != row.email:
        raise TokenRejected("This link is for an address the account no longer uses.")
    user.password_hash = new_hash
    # The link reached their inbox, so the address is proven too.
    user.email_verified = True
    await accounts.revoke_all_sessions(session, user)
    await end_links(session, user, *ACCOUNT_LINKS)
    return user


MAIL_BUILDERS: Mapping[str, mail_outbox.Builder] = {
    "magic_link": build_magic_link,
    "password_reset": build_password_reset,
    "email_change": build_email_change,
}
