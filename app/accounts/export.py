"""Everything stored about a reader, as JSON (GET /me/export): kept by the account's id or by
its address, in every domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Consent, RefreshToken, User
from app.admin.models import MemberLabel
from app.billing.models import BillingCustomer, CompGrant, Payment, Subscription
from app.comments.models import Comment, CommentLike, CommentPreference, CommentReport
from app.core.db import utcnow
from app.newsletter.models import Delivery, Newsletter, NewsletterSubscription, Subscriber


def _plain(row: Any, *names: str) -> dict[str, Any]:
    """The named attributes of a row, timestamps as ISO text."""
    out = {}
    for name in names:
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


async def _all(session: AsyncSession, query: Any) -> Sequence[Any]:
    rows: Sequence[Any] = (await session.exec(query)).all()
    return rows


async def export_data(session: AsyncSession, user: User) -> dict[str, Any]:
    """Give back everything stored about the user, as plain JSON-ready data."""
    uid, address = user.id, user.email
    consents = await _all(
        session,
        select(Consent).where(or_(col(Consent.user_id) == uid, col(Consent.email) == address)),
    )
    customer = await session.get(BillingCustomer, uid)
    preference = await session.get(CommentPreference, uid)
    return {
        "exported_at": utcnow(),
        "profile": {
            **_plain(user, "id", "email", "display_name", "role", "email_verified"),
            **_plain(user, "created_at", "last_login_at"),
            "has_password": user.password_hash is not None,
        },
        "consents": [
            _plain(c, "document", "version", "accepted_at", "ip", "source") for c in consents
        ],
        "sessions": await _sessions(session, user),
        "subscriptions": [
            _plain(s, "status", "amount", "currency", "interval", "cancel_at_period_end")
            | _plain(s, "current_period_end", "created_at")
            for s in await _all(session, select(Subscription).where(Subscription.user_id == uid))
        ],
        "payments": [
            _plain(p, "amount", "currency", "paid_at", "refunded_amount")
            for p in await _all(session, select(Payment).where(Payment.user_id == uid))
        ],
        "billing": {"customer_id": customer.customer_id if customer else None},
        "complimentary_access": [
            _plain(g, "starts_at", "ends_at", "revoked_at")
            for g in await _all(session, select(CompGrant).where(CompGrant.user_id == uid))
        ],
        "comments": [
            _plain(c, "article_id", "body", "status", "created_at")
            for c in await _all(session, select(Comment).where(Comment.author_id == uid))
        ],
        "comment_likes": [
            _plain(like, "comment_id", "created_at")
            for like in await _all(session, select(CommentLike).where(CommentLike.user_id == uid))
        ],
        "comment_reports": [
            _plain(r, "comment_id", "reason", "created_at")
            for r in await _all(
                session, select(CommentReport).where(CommentReport.reporter_id == uid)
            )
        ],
        "preferences": {"comment_reply_emails": bool(preference and preference.reply_emails)},
        "labels": list(
            await _all(session, select(MemberLabel.label).where(MemberLabel.user_id == uid))
        ),
        "newsletters": await _newsletters(session, user),
    }


async def _sessions(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    families: dict[str, dict[str, Any]] = {}
    for row in await _all(session, select(RefreshToken).where(RefreshToken.user_id == user.id)):
        family = families.setdefault(
            row.family_id, {"started_at": row.created_at.isoformat(), "revoked": False}
        )
        family["last_used_at"] = row.created_at.isoformat()
        family["revoked"] = family["revoked"] or row.revoked_at is not None
    return list(families.values())


async def _newsletters(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    """Each newsletter address of the reader (the account's, or its address without one),
    what it receives, and what was sent to it."""
    out = []
    subscribers = await _all(
        session,
        select(Subscriber).where(
            or_(col(Subscriber.user_id) == user.id, col(Subscriber.email) == user.email)
        ),
    )
    for subscriber in subscribers:
        lists = await _all(
            session,
            select(Newsletter.slug, NewsletterSubscription)
            .join(Newsletter, col(Newsletter.id) == NewsletterSubscription.newsletter_id)
            .where(NewsletterSubscription.subscriber_id == subscriber.id),
        )
        deliveries = await _all(
            session, select(Delivery).where(Delivery.subscriber_id == subscriber.id)
        )
        out.append(
            {
                **_plain(subscriber, "email", "status", "source", "created_at", "confirmed_at"),
                "lists": [
                    {"newsletter": slug}
                    | _plain(link, "active", "subscribed_at", "unsubscribed_at")
                    for slug, link in lists
                ],
                "deliveries": [
                    _plain(d, "issue_id", "status", "sent_at", "attempts") for d in deliveries
                ],
            }
        )
    return out
