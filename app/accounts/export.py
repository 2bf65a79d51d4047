"""Everything stored about a reader, as JSON (GET /me/export): kept by the account's id or by
its address, in every domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as repo
from app.accounts.models import User
from app.admin import repository as admin
from app.billing import repository as billing
from app.comments import repository as comments
from app.core.db import pk, utcnow
from app.newsletter import repository as newsletter


def _plain(row: Any, *names: str) -> dict[str, Any]:
    """The named attributes of a row, timestamps as ISO text."""
    out = {}
    for name in names:
        value = getattr(row, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def _profile(user: User) -> dict[str, Any]:
    return {
        **_plain(user, "id", "email", "display_name", "role", "email_verified"),
        **_plain(user, "created_at", "last_login_at"),
        "has_password": user.password_hash is not None,
    }


async def _account(session: AsyncSession, user: User) -> dict[str, Any]:
    consents = await repo.consents_for(session, pk(user.id), user.email)
    return {
        "profile": _profile(user),
        "consents": [
            _plain(c, "document", "version", "accepted_at", "ip", "source") for c in consents
        ],
        "sessions": await _sessions(session, user),
    }


async def _billing(session: AsyncSession, uid: int) -> dict[str, Any]:
    customer = await billing.customer_of_user(session, uid)
    return {
        "subscriptions": [
            _plain(s, "status", "amount", "currency", "interval", "cancel_at_period_end")
            | _plain(s, "current_period_end", "created_at")
            for s in await billing.every_subscription_of(session, uid)
        ],
        "payments": [
            _plain(p, "amount", "currency", "paid_at", "refunded_amount")
            for p in await billing.payments_of(session, uid)
        ],
        "billing": {"customer_id": customer.customer_id if customer else None},
        "complimentary_access": [
            _plain(g, "starts_at", "ends_at", "revoked_at")
            for g in await billing.comp_grants_of(session, uid)
        ],
    }


async def _comments(session: AsyncSession, uid: int) -> dict[str, Any]:
    return {
        "comments": [
            _plain(c, "article_id", "body", "status", "created_at")
            for c in await comments.authored_by(session, uid)
        ],
        "comment_likes": [
            _plain(like, "comment_id", "created_at")
            for like in await comments.likes_by(session, uid)
        ],
        "comment_reports": [
            _plain(r, "comment_id", "reason", "created_at")
            for r in await comments.reports_by(session, uid)
        ],
    }


async def export_data(session: AsyncSession, user: User) -> dict[str, Any]:
    """Give back everything stored about the user, as plain JSON-ready data."""
    uid = pk(user.id)
    account = await _account(session, user)
    billing = await _billing(session, uid)
    preference = await comments.preference(session, uid)
    return {
        "exported_at": utcnow(),
        **account,
        **billing,
        **await _comments(session, uid),
        "preferences": {"comment_reply_emails": bool(preference and preference.reply_emails)},
        "labels": list(await admin.label_names(session, uid)),
        "newsletters": await _newsletters(session, user),
    }


async def _sessions(session: AsyncSession, user: User) -> list[dict[str, Any]]:
    families: dict[str, dict[str, Any]] = {}
    for row in await repo.refresh_tokens_of(session, pk(user.id)):
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
    for subscriber in await newsletter.subscribers_of(session, user.id, user.email):
        lists = await newsletter.subscriber_lists(session, pk(subscriber.id))
        deliveries = await newsletter.subscriber_deliveries(session, pk(subscriber.id))
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
