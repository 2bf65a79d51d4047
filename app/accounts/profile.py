"""The reader's own account: sign-up, profile and its changes, sign-in by link, deletion."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.entitlements import AccessLevel
from app.accounts import links
from app.accounts import repository as repo
from app.accounts import service as accounts
from app.accounts.auth_context import AuthContext
from app.accounts.errors import ReauthLinkSpent, ReauthRequired, TokenRejected
from app.accounts.models import (
    STAFF_ROLES,
    TokenPurpose,
    User,
)
from app.accounts.schemas import MeOut, MePatch
from app.accounts.service import IssuedTokens
from app.admin import repository as admin
from app.articles import derived
from app.billing import service as billing
from app.billing.gateway import PaymentGateway
from app.billing.repository import user_reader_level
from app.comments import service as comments
from app.core import mail_outbox
from app.core.config import Settings
from app.core.db import pk, utcnow
from app.newsletter import subscribers as newsletter_subscribers


async def reauthenticate(
    session: AsyncSession,
    auth: AuthContext,
    user: User,
    *,
    password: str | None,
    reauth_token: str | None,
    consume: bool = True,
) -> None:
    """Raise ReauthRequired unless the current password or a fresh magic link is given.

    With `consume=False` a link is only checked (in a read session); the caller consumes it
    in its write phase.
    """
    if password is not None:
        ok, _ = await auth.hasher.verify(password, user.password_hash)
        if ok:
            return
        raise ReauthRequired("The current password is wrong.")
    if reauth_token is not None:
        if consume:
            try:
                row = await links.consume(session, reauth_token, TokenPurpose.magic_link)
            except TokenRejected as exc:
                raise ReauthRequired("The sign-in link is not valid for this.") from exc
        else:
            found = await links.usable(session, reauth_token, TokenPurpose.magic_link)
            if found is None:
                raise ReauthRequired("The sign-in link is not valid for this.")
            row = found
        if row.user_id == user.id:
            return
    raise ReauthRequired("Give the current password or a fresh sign-in link token.")


async def _names_on_pages_change(session: AsyncSession, user: User) -> None:
    # Staff names are printed on their articles' pages (bylines) and are search words.
    if user.role in STAFF_ROLES:
        await derived.for_author(session, pk(user.id))


async def update_profile(
    session: AsyncSession,
    auth: AuthContext,
    user: User,
    *,
    display_name: str | None,
    email: str | None,
    new_password: str | None,
    current_password: str | None,
    reauth_token: str | None,
) -> None:
    """Apply a profile change; an email change is confirmed by a link to the new address."""
    new_hash = None
    if new_password is not None:
        accounts.check_password_rules(auth, new_password)
        # Hashed before the first statement, so no write lock is held while it runs.
        new_hash = await auth.hasher.hash(new_password)
    moving = email is not None and email != user.email
    if moving or new_hash is not None:
        await reauthenticate(
            session, auth, user, password=current_password, reauth_token=reauth_token
        )
    if display_name is not None:
        user.display_name = display_name.strip()
    if new_hash is not None:
        user.password_hash = new_hash
        # Other devices must sign in again with the new password, and earlier links die.
        await accounts.revoke_all_sessions(session, user)
        await links.end_links(session, user, *links.ACCOUNT_LINKS)
    session.add(user)
    if display_name is not None:
        await _names_on_pages_change(session, user)
    if moving and email is not None:
        links.request_email_change(session, user, email)


async def confirm_email(session: AsyncSession, settings: Settings, *, token: str) -> User:
    """Confirm an address from its link; the account's newsletter address follows."""
    user = await links.verify_email(session, settings, token=token)
    await newsletter_subscribers.address_proven(session, user)
    return user


async def sign_in_by_link(session: AsyncSession, auth: AuthContext, *, token: str) -> IssuedTokens:
    """Sign in with a magic link, which proves the address too."""
    issued = await links.sign_in_with_magic_link(session, auth, token=token)
    await newsletter_subscribers.address_proven(session, issued.user)
    return issued


async def reset_password(
    session: AsyncSession, auth: AuthContext, *, token: str, new_password: str
) -> User:
    """Set a new password from a reset link, which proves the address too."""
    user = await links.reset_password(session, auth, token=token, new_password=new_password)
    await newsletter_subscribers.address_proven(session, user)
    return user


async def delete_account(
    read: AsyncSession,
    session: AsyncSession,
    gateway: PaymentGateway,
    user: User,
    *,
    reauth_token: str | None,
) -> None:
    """Erase personal data and close every session; keep an anonymous row for payments.

    The provider comes first, outside any write transaction: live subscriptions end at
    once (nobody pays for a deleted account) and the customer is deleted there. What is
    erased here is everything keyed by the account or by its address (README, "Deleting an
    account").
    """
    ended = await billing.end_at_provider(read, gateway, user)
    if reauth_token is not None:
        # Checked before the provider was asked; used up now, in the write transaction.
        try:
            await links.consume(session, reauth_token, TokenPurpose.magic_link)
        except TokenRejected as exc:
            raise ReauthLinkSpent("The sign-in link is not valid for this.") from exc
    await billing.forget_customer(session, user, ended)
    await newsletter_subscribers.forget(session, user)
    await comments.anonymise_author(session, pk(user.id))
    await accounts.revoke_all_sessions(session, user)
    await repo.erase_personal_rows(session, pk(user.id), user.email)
    await admin.delete_labels(session, pk(user.id))
    await repo.drop_queued_mail_to(session, user.email)
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.display_name = ""
    user.password_hash = None
    user.email_verified = False
    user.disabled = True
    user.deleted_at = utcnow()
    session.add(user)
    await _names_on_pages_change(session, user)


async def delete_me(
    read: AsyncSession,
    session: AsyncSession,
    auth: AuthContext,
    gateway: PaymentGateway,
    user: User,
    *,
    password: str | None,
    reauth_token: str | None,
) -> None:
    """Delete the reader's own account once they re-authenticate (DELETE /me).

    The re-authentication is checked in the read session, before the provider is asked; a
    link is used up by the deletion, whose failure to do so is `ReauthLinkSpent`.
    """
    await reauthenticate(
        read, auth, user, password=password, reauth_token=reauth_token, consume=False
    )
    await delete_account(read, session, gateway, user, reauth_token=reauth_token)


async def register(
    session: AsyncSession,
    auth: AuthContext,
    *,
    email: str,
    password: str,
    display_name: str,
    accept_terms: bool,
    ip: str | None,
) -> IssuedTokens:
    """Create a reader account, queue its verification link and sign it in."""
    user = await accounts.signup(
        session,
        auth,
        email=email,
        password=password,
        display_name=display_name,
        accept_terms=accept_terms,
        ip=ip,
    )
    mail_outbox.enqueue(
        session, auth.settings, links.verification_email(session, auth.settings, user)
    )
    return await accounts.open_session(session, auth, user)


async def me(session: AsyncSession, auth: AuthContext, user: User) -> MeOut:
    """The reader's profile with their access level and newsletter choices."""
    level = await user_reader_level(session, user, grace_days=auth.settings.billing_grace_days)
    chosen = await newsletter_subscribers.member_choices(session, user)
    status = await newsletter_subscribers.subscription_status(session, user)
    return MeOut(
        id=user.id or 0,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        email_verified=user.email_verified,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        access_level=level.label,
        newsletters=chosen,
        newsletter_status=status,
    )


async def update_me(session: AsyncSession, auth: AuthContext, user: User, body: MePatch) -> MeOut:
    """Apply the reader's profile change and newsletter choices; give back the new profile."""
    await update_profile(
        session,
        auth,
        user,
        display_name=body.display_name,
        email=body.email,
        new_password=body.new_password,
        current_password=body.current_password,
        reauth_token=body.reauth_token,
    )
    if body.newsletters is not None:
        level = await user_reader_level(session, user, grace_days=auth.settings.billing_grace_days)
        await newsletter_subscribers.set_member_choices(
            session, user, body.newsletters, paid=level is AccessLevel.paid
        )
    return await me(session, auth, user)
