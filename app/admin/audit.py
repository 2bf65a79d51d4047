"""The audit log, written by the database session itself.

A staff request marks its session with the acting user (see accounts.deps.require_role).
Every flush of such a session records, for each audited row created, changed or deleted,
the fields that changed and their values before and after. Nothing in the routers has to
remember to log, so no staff write escapes it.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.orm import Session

from app.admin.models import AuditEntry, MemberLabel
from app.core.db import utcnow

ACTOR_KEY = "audit_actor_id"
REQUEST_KEY = "audit_request_id"
PENDING_KEY = "audit_pending"

# Derived or bulky fields that change with every edit and say nothing a human needs.
SKIPPED_FIELDS = frozenset(
    {
        "content_html",
        "preview_html",
        "body_html",
        "excerpt",
        "word_count",
        "reading_minutes",
        "updated_at",
        "password_hash",
        "tokens_valid_after",
        "like_count",
    }
)


def _audited() -> tuple[type[Any], ...]:
    from app.accounts.models import User
    from app.articles.models import Article
    from app.billing.models import CompGrant, Plan
    from app.comments.models import Comment, CommentBan
    from app.newsletter.models import Newsletter, NewsletterIssue

    return (
        Article,
        Plan,
        CompGrant,
        Comment,
        CommentBan,
        Newsletter,
        NewsletterIssue,
        User,
        MemberLabel,
    )


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def _changes(obj: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = inspect(obj)
    before: dict[str, Any] = {}
    after: dict[str, Any] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in SKIPPED_FIELDS:
            continue
        history = state.attrs[attr.key].history
        if history.has_changes():
            before[attr.key] = _plain(history.deleted[0]) if history.deleted else None
            after[attr.key] = _plain(history.added[0]) if history.added else None
    return before, after


def _snapshot(obj: Any) -> dict[str, Any]:
    state = inspect(obj)
    return {
        attr.key: _plain(getattr(obj, attr.key))
        for attr in state.mapper.column_attrs
        if attr.key not in SKIPPED_FIELDS
    }


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(ACTOR_KEY) is None:
        return
    audited = _audited()
    pending = session.info.setdefault(PENDING_KEY, [])
    for obj in session.new:
        if isinstance(obj, audited):
            pending.append(("create", obj, None, None))
    for obj in session.dirty:
        if isinstance(obj, audited) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if after:
                pending.append(("update", obj, before, after))
    for obj in session.deleted:
        if isinstance(obj, audited):
            pending.append(("delete", obj, _snapshot(obj), None))


def _after_flush_postexec(session: Session, _context: Any) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    actor = session.info.get(ACTOR_KEY)
    request_id = session.info.get(REQUEST_KEY)
    for action, obj, before, after in pending:
        identity = inspect(obj).identity
        entity_id = ",".join(str(part) for part in identity) if identity else "?"
        if action == "create":
            after = _snapshot(obj)
        session.add(
            AuditEntry(
                actor_id=actor,
                action=action,
                entity=type(obj).__tablename__,
                entity_id=entity_id,
                before=before,
                after=after,
                request_id=request_id,
                created_at=utcnow(),
            )
        )


def install() -> None:
    """Attach the audit listeners to every session (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_flush_postexec", _after_flush_postexec)


def mark_actor(session: Any, user_id: int | None, request_id: str | None) -> None:
    """Record `user_id` as the author of every audited write made through this session."""
    sync = getattr(session, "sync_session", session)
    sync.info[ACTOR_KEY] = user_id
    sync.info[REQUEST_KEY] = request_id
