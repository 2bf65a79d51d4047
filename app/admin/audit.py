"""The audit log, written by the database session itself.

A staff request marks its session with the acting user (see accounts.deps.require_role).
Every flush of such a session records, for each audited row created, changed or deleted,
the fields that changed and their values before and after; a Core INSERT, UPDATE or DELETE
such a session runs on an audited table is recorded too, with the values it bound. Nothing
in the routers has to remember to log, so no staff write escapes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from enum import Enum
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.dml import Delete, Insert, Update
from sqlalchemy.sql.elements import BinaryExpression, BindParameter

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
        "payload",
        # Article's optimistic-lock counter: its revisions are listed apart.
        "version",
    }
)


def _audited() -> tuple[type[Any], ...]:
    from app.accounts.models import User
    from app.articles.models import Article, ArticleAuthor, ArticleTag
    from app.billing.models import (
        BillingCustomer,
        CompGrant,
        Payment,
        Plan,
        StripeEvent,
        Subscription,
        Tier,
    )
    from app.comments.models import Comment, CommentBan
    from app.newsletter.models import Newsletter, NewsletterIssue

    return (
        Article,
        ArticleAuthor,
        ArticleTag,
        Tier,
        Plan,
        CompGrant,
        Subscription,
        BillingCustomer,
        Payment,
        StripeEvent,
        Comment,
        CommentBan,
        Newsletter,
        NewsletterIssue,
        User,
        MemberLabel,
    )


def _audited_tables() -> frozenset[str]:
    return frozenset(model.__tablename__ for model in _audited())


def _link_fields(session: Session, obj: Any) -> dict[str, Any]:
    """What names an article's author or tag link in every entry about it (the slug for a
    tag: its id says nothing to a reader of the log); nothing for other rows."""
    from app.articles.models import ArticleAuthor, ArticleTag, Tag

    if isinstance(obj, ArticleAuthor):
        return {"article_id": obj.article_id, "user_id": obj.user_id}
    if isinstance(obj, ArticleTag):
        tag = session.get(Tag, obj.tag_id)
        slug = tag.slug if tag is not None else None
        return {"article_id": obj.article_id, "tag_id": obj.tag_id, "tag_slug": slug}
    return {}


def _entity_id(obj: Any) -> str:
    from app.articles.models import ArticleAuthor, ArticleTag

    # Links are filed under their article, so `?entity=article_tag&entity_id=<article>`
    # answers "who tagged this article with what".
    if isinstance(obj, ArticleAuthor | ArticleTag):
        return str(obj.article_id)
    identity = inspect(obj).identity
    return ",".join(str(part) for part in identity) if identity else "?"


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
            pending.append(("create", obj, None, _link_fields(session, obj)))
    for obj in session.dirty:
        if isinstance(obj, audited) and session.is_modified(obj, include_collections=False):
            before, after = _changes(obj)
            if after:
                link = _link_fields(session, obj)
                pending.append(("update", obj, link | before, link | after))
    for obj in session.deleted:
        if isinstance(obj, audited):
            pending.append(("delete", obj, _snapshot(obj) | _link_fields(session, obj), None))


def _after_flush_postexec(session: Session, _context: Any) -> None:
    pending = session.info.pop(PENDING_KEY, None)
    if not pending:
        return
    for action, obj, before, after in pending:
        if action == "create":
            # The snapshot waits for the flush: ids the database assigns are known now.
            after, before = _snapshot(obj) | after, None
        _record(session, action, type(obj).__tablename__, _entity_id(obj), before, after)


def _record(
    session: Session,
    action: str,
    entity: str,
    entity_id: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    session.add(
        AuditEntry(
            actor_id=session.info.get(ACTOR_KEY),
            action=action,
            entity=entity,
            entity_id=entity_id,
            before=before,
            after=after,
            request_id=session.info.get(REQUEST_KEY),
            created_at=utcnow(),
        )
    )


_STATEMENT_ACTIONS = ((Insert, "create"), (Update, "update"), (Delete, "delete"))


def _on_execute(state: ORMExecuteState) -> Result[Any] | None:
    """Record a Core (or bulk ORM) INSERT, UPDATE or DELETE on an audited table: the unit of
    work never sees those (the billing pipeline writes subscriptions that way)."""
    session = state.session
    statement = state.statement
    if session.info.get(ACTOR_KEY) is None or not isinstance(statement, Insert | Update | Delete):
        return None
    table = statement.table
    name = getattr(table, "name", None)
    if name not in _audited_tables():
        return None
    result, returned = _run(state)
    if returned is None:
        return result
    action = next(label for kind, label in _STATEMENT_ACTIONS if isinstance(statement, kind))
    for n, values in enumerate(_bound_values(statement, state)):
        known = values | (returned[n] if n < len(returned) else {})
        after = {k: _plain(v) for k, v in known.items() if k not in SKIPPED_FIELDS}
        if after or action != "update":
            key = _statement_key(statement, table, known)
            _record(session, action, str(name), key, None, after or None)
    return result


def _run(state: ORMExecuteState) -> tuple[Result[Any], list[dict[str, Any]] | None]:
    """Run the statement; give back its result for the caller and the rows its RETURNING
    gave ([] without one), or None when it touched no row."""
    result = state.invoke_statement()
    if not isinstance(result, CursorResult):
        return result, []
    if result.returns_rows:
        # RETURNING names the rows written (a generated id): read them, hand back a copy.
        frozen = result.freeze()
        returned = [dict(row._mapping) for row in frozen().all()]
        return frozen(), returned or None
    # No row touched (a duplicate skipped by ON CONFLICT DO NOTHING, a conditional UPDATE
    # that lost): nothing changed that needs an entry.
    return result, [] if result.rowcount != 0 else None


def _bound_values(
    statement: Insert | Update | Delete, state: ORMExecuteState
) -> list[dict[str, Any]]:
    """Each parameter set's values by name: the caller's, and literals bound to columns."""
    columns = set(statement.table.c.keys())
    compiled = statement.compile(dialect=state.session.get_bind().dialect)
    literals = {name: value for name, value in compiled.params.items() if name in columns}
    given = state.parameters
    if given is None or isinstance(given, Mapping):
        sets: list[Mapping[str, Any]] = [given or {}]
    else:
        sets = list(given)
    return [literals | dict(values) for values in sets]


def _statement_key(statement: Any, table: Any, values: dict[str, Any]) -> str:
    """The row a statement names: its WHERE's `key column = value`, else the value bound to
    a key column; "*" when it names none (a Core INSERT of a generated id)."""
    keys = [c.name for c in table.primary_key.columns] + [c.name for c in table.c if c.unique]
    where = getattr(statement, "whereclause", None)
    found: dict[str, Any] = {}
    for element in visitors.iterate(where) if where is not None else ():
        if (
            isinstance(element, BinaryExpression)
            and element.operator is operators.eq
            and isinstance(element.right, BindParameter)
            and getattr(element.left, "name", None) in keys
        ):
            bind = element.right
            found[element.left.name] = values.get(bind.key, bind.value)
    for key in keys:
        value = found.get(key, values.get(key))
        if value is not None:
            return str(value)
    return "*"


def install() -> None:
    """Attach the audit listeners to every session (idempotent)."""
    if not event.contains(Session, "before_flush", _before_flush):
        event.listen(Session, "before_flush", _before_flush)
        event.listen(Session, "after_flush_postexec", _after_flush_postexec)
        event.listen(Session, "do_orm_execute", _on_execute)


def mark_actor(session: Any, user_id: int | None, request_id: str | None) -> None:
    """Record `user_id` as the author of every audited write made through this session."""
    sync = getattr(session, "sync_session", session)
    sync.info[ACTOR_KEY] = user_id
    sync.info[REQUEST_KEY] = request_id


@dataclass(frozen=True)
class Actor:
    """Who a write is recorded for, carried to sessions a staff request opens itself."""

    user_id: int
    request_id: str | None


def actor_of(session: Any) -> Actor | None:
    """Give back the actor `session` was marked with, or None for a session of no staff."""
    info = getattr(session, "sync_session", session).info
    user_id = info.get(ACTOR_KEY)
    return Actor(user_id, info.get(REQUEST_KEY)) if user_id is not None else None


def mark(session: Any, actor: Actor | None) -> None:
    """Record `actor` as the author of every audited write made through `session` (None:
    leave the session unmarked, as Stripe's own deliveries are)."""
    if actor is not None:
        mark_actor(session, actor.user_id, actor.request_id)
