"""The reader's own account: profile changes, data export and deletion."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import links
from app.accounts import service as accounts
from app.accounts.errors import ReauthRequired, TokenRejected
from app.accounts.kit import AuthKit
from app.accounts.models import Consent, EmailToken, RefreshToken, TokenPurpose, User
from app.accounts.service import IssuedTokens
from app.billing import service as billing
from app.billing.gateway import PaymentGateway
from app.billing.models import CompGrant, Payment, Subscription
from app.comments import service as comments
from app.comments.models import Comment
from app.core.config import Settings
from app.core.db import pk, utcnow
from app.newsletter import subscribers as newsletter_subscribers


async def reauthenticate(
    session: AsyncSession,
    kit: AuthKit,
    user: User,
    *,
    password: str | None,
    reauth_token: str | None,
) -> None:
    """Raise ReauthRequired unless the current password or a fresh magic link is given."""
    if password is not None:
        ok, _ = await kit.hasher.verify(password, user.password_hash)
        if ok:
            return
        raise ReauthRequired("The current password is wrong.")
    if reauth_token is not None:
        try:
            row = await links.consume(session, reauth_token, TokenPurpose.magic_link)
        except TokenRejected as exc:
            raise ReauthRequired("The sign-in link is not valid for this.") from exc
        if row.user_id == user.id:
            return
    raise ReauthRequired("Give the current password or a fresh sign-in link token.")


async def update_profile(
    session: AsyncSession,
    kit: AuthKit,
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
        accounts.check_password_rules(kit, new_password)
        # Hashed before the first statement, so no write lock is held while it runs.
        new_hash = await kit.hasher.hash(new_password)
    moving = email is not None and email != user.email
    if moving or new_hash is not None:
        await reauthenticate(
            session, kit, user, password=current_password, reauth_token=reauth_token
        )
    if display_name is not None:
        user.display_name = display_name.strip()
    if new_hash is not None:
        user.password_hash = new_hash
        # Other devices must sign in again with the new password, and earlier links die.
        await accounts.revoke_all_sessions(session, user)
        await links.end_links(session, user, *links.ACCOUNT_LINKS)
    session.add(user)
    if moving and email is not None:
        links.request_email_change(session, user, email)


async def confirm_email(session: AsyncSession, settings: Settings, *, token: str) -> User:
    """Confirm an address from its link; the account's newsletter address follows."""
    user = await links.verify_email(session, settings, token=token)
    await newsletter_subscribers.address_proven(session, user)
    return user


async def sign_in_by_link(session: AsyncSession, kit: AuthKit, *, token: str) -> IssuedTokens:
    """Sign in with a magic link, which proves the address too."""
    issued = await links.sign_in_with_magic_link(session, kit, token=token)
    await newsletter_subscribers.address_proven(session, issued.user)
    return issued


async def reset_password(
    session: AsyncSession, kit: AuthKit, *, token: str, new_password: str
) -> User:
    """Set a new password from a reset link, which proves the address too."""
    user = await links.reset_password(session, kit, token=token, new_password=new_password)
    await newsletter_subscribers.address_proven(session, user)
    return user


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


async def export_data(session: AsyncSession, user: User) -> dict[str, Any]:
    """Give back everything stored about the user, as plain JSON-ready data."""
    consents = (await session.exec(select(Consent).where(Consent.user_id == user.id))).all()
    sessions = (
        await session.exec(select(RefreshToken).where(RefreshToken.user_id == user.id))
    ).all()
    families: dict[str, dict[str, Any]] = {}
    for row in sessions:
        family = families.setdefault(
            row.family_id, {"started_at": _iso(row.created_at), "revoked": False}
        )
        family["last_used_at"] = _iso(row.created_at)
        family["revoked"] = family["revoked"] or row.revoked_at is not None
    return {
        "exported_at": utcnow(),
        "profile": {
            "id": user.id,
            "email": user.email,
            "display_name": user.display_name,
            "role": user.role,
            "email_verified": user.email_verified,
            "created_at": _iso(user.created_at),
            "last_login_at": _iso(user.last_login_at),
            "has_password": user.password_hash is not None,
        },
        "consents": [
            {
                "document": c.document,
                "version": c.version,
                "accepted_at": _iso(c.accepted_at),
                "ip": c.ip,
                "source": c.source,
            }
            for c in consents
        ],
        "sessions": list(families.values()),
        "subscriptions": [
            {
                "status": s.status,
                "amount": s.amount,
                "currency": s.currency,
                "interval": s.interval,
                "cancel_at_period_end": s.cancel_at_period_end,
                "current_period_end": _iso(s.current_period_end),
                "created_at": _iso(s.created_at),
            }
            for s in (
                await session.exec(select(Subscription).where(Subscription.user_id == user.id))
            ).all()
        ],
        "payments": [
            {
                "amount": p.amount,
                "currency": p.currency,
                "paid_at": _iso(p.paid_at),
                "refunded_amount": p.refunded_amount,
            }
            for p in (await session.exec(select(Payment).where(Payment.user_id == user.id))).all()
        ],
        "complimentary_access": [
            {
                "starts_at": _iso(g.starts_at),
                "ends_at": _iso(g.ends_at),
                "revoked_at": _iso(g.revoked_at),
            }
            for g in (
                await session.exec(select(CompGrant).where(CompGrant.user_id == user.id))
            ).all()
        ],
        "comments": [
            {
                "article_id": c.article_id,
                "body": c.body,
                "status": c.status,
                "created_at": _iso(c.created_at),
            }
            for c in (await session.exec(select(Comment).where(Comment.author_id == user.id))).all()
        ],
        "newsletters": [
            {"newsletter": slug}
            for slug in await newsletter_subscribers.member_choices(session, user)
        ],
    }


async def delete_account(session: AsyncSession, gateway: PaymentGateway, user: User) -> None:
    """Erase personal data and close every session; keep an anonymous row for payments.

    Live subscriptions are cancelled at the provider first, so nobody pays for a deleted account.
    """
    await billing.cancel_all_now(session, gateway, user)
    await newsletter_subscribers.forget(session, user)
    await comments.anonymise_author(session, pk(user.id))
    await accounts.revoke_all_sessions(session, user)
    await session.exec(delete(EmailToken).where(col(EmailToken.user_id) == user.id))
    await session.exec(delete(RefreshToken).where(col(RefreshToken.user_id) == user.id))
    # Consent records prove what a person agreed to; with the person gone they are personal data.
    await session.exec(delete(Consent).where(col(Consent.user_id) == user.id))
    user.email = f"deleted-{user.id}@deleted.invalid"
    user.display_name = ""
    user.password_hash = None
    user.email_verified = False
    user.disabled = True
    user.deleted_at = utcnow()
    session.add(user)
