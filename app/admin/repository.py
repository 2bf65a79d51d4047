"""Every statement the staff console runs on its own tables (member labels, the audit log),
and the member search, composed from the conditions each owner exports.

A member search is one statement on accounts' table (accounts.repository.members_page); the
billing and newsletter filters in it are expressions those domains define over the account's
id column (`paid_condition`, `comp_condition`, `subscription_condition`, `tier_condition`,
`free_condition`, `follows_condition`, `bounced_condition`), so each rule and each table is
still named in one place.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, insert, not_
from sqlalchemy import text as sql
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.accounts.models import User
from app.admin.models import AuditEntry, MemberLabel
from app.billing.repository import comp_condition, paid_condition, tier_members
from app.billing.repository import members as billing
from app.core.db import utcnow
from app.core.pagination import newest_first
from app.newsletter import repository as newsletter


@dataclass(frozen=True)
class MemberFilters:
    q: str | None = None
    role: str | None = None
    access: str | None = None  # free | paid
    plan_id: int | None = None
    status: str | None = None  # a subscription status
    newsletter: str | None = None  # slug
    created_from: datetime | None = None
    created_to: datetime | None = None
    comped: bool | None = None
    bounced: bool | None = None
    label: str | None = None
    tier: str | None = None  # a tier's slug, or "free" for no paid tier
    # What the service found `tier` to mean: that tier's id, or no paid tier at all.
    tier_id: int | None = None
    no_tier: bool = False


@dataclass(frozen=True)
class AuditFilters:
    actor: int | None = None
    entity: str | None = None
    entity_id: str | None = None
    action: str | None = None


# --- member search ----------------------------------------------------------------------------


def label_condition(user_id: Any, label: str) -> ColumnElement[bool]:
    """SQL for "the member carries this label", over a user id column."""
    return exists().where(col(MemberLabel.user_id) == user_id, col(MemberLabel.label) == label)


def _billing_conditions(
    f: MemberFilters, user_id: Any, grace_days: int
) -> list[ColumnElement[bool]]:
    now, grace = utcnow(), timedelta(days=grace_days)
    out: list[ColumnElement[bool]] = []
    if f.access == "paid":
        out.append(paid_condition(user_id, now, grace))
    elif f.access == "free":
        out.append(not_(paid_condition(user_id, now, grace)))
    if f.plan_id is not None or f.status:
        out.append(billing.subscription_condition(user_id, f.plan_id, f.status))
    if f.comped is not None:
        comp = comp_condition(user_id, now)
        out.append(comp if f.comped else not_(comp))
    if f.tier_id is not None:
        out.append(tier_members.tier_condition(user_id, f.tier_id, now, grace))
    elif f.no_tier:
        out.append(tier_members.free_condition(user_id, now, grace))
    return out


def _other_conditions(f: MemberFilters, user_id: Any) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if f.label:
        out.append(label_condition(user_id, f.label))
    if f.newsletter:
        out.append(newsletter.follows_condition(user_id, f.newsletter))
    if f.bounced is not None:
        bounced = newsletter.bounced_condition(user_id)
        out.append(bounced if f.bounced else not_(bounced))
    return out


async def search_members(
    session: AsyncSession,
    filters: MemberFilters,
    *,
    grace_days: int,
    limit: int,
    cursor: str | None,
) -> tuple[list[User], str | None]:
    """Give back one page of members matching the filters, newest first."""

    def where(user_id: Any) -> list[ColumnElement[bool]]:
        return [
            *_other_conditions(filters, user_id),
            *_billing_conditions(filters, user_id, grace_days),
        ]

    return await accounts.members_page(
        session,
        q=filters.q,
        role=filters.role,
        created_from=filters.created_from,
        created_to=filters.created_to,
        where=where,
        limit=limit,
        cursor=cursor,
    )


# --- member labels ----------------------------------------------------------------------------


async def labels_of(session: AsyncSession, user_ids: Sequence[int]) -> dict[int, list[str]]:
    """Give back each member's labels, alphabetically."""
    out: dict[int, list[str]] = {}
    if not user_ids:
        return out
    rows = await session.exec(
        select(MemberLabel.user_id, MemberLabel.label)
        .where(col(MemberLabel.user_id).in_(list(user_ids)))
        .order_by(col(MemberLabel.label))
    )
    for user_id, label in rows:
        out.setdefault(user_id, []).append(label)
    return out


async def label_pairs(session: AsyncSession, user_ids: Sequence[int]) -> set[tuple[int, str]]:
    """(member, label) for every label these members carry."""
    rows = await session.exec(
        select(MemberLabel.user_id, MemberLabel.label).where(col(MemberLabel.user_id).in_(user_ids))
    )
    return set(rows.all())


async def insert_labels(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Put labels on members, one multi-row INSERT (nothing refers back to them)."""
    if rows:
        await session.exec(insert(MemberLabel), params=rows)


async def replace_labels(session: AsyncSession, user_id: int, labels: Sequence[str]) -> None:
    """Put exactly these labels on the member."""
    for old in (
        await session.exec(select(MemberLabel).where(MemberLabel.user_id == user_id))
    ).all():
        await session.delete(old)
    await session.flush()
    for label in labels:
        session.add(MemberLabel(user_id=user_id, label=label))
    await session.flush()


async def label_names(session: AsyncSession, user_id: int) -> Sequence[str]:
    """The member's labels, in storage order."""
    return (
        await session.exec(select(MemberLabel.label).where(MemberLabel.user_id == user_id))
    ).all()


async def delete_labels(session: AsyncSession, user_id: int) -> None:
    """Remove every label from the member."""
    await session.exec(delete(MemberLabel).where(col(MemberLabel.user_id) == user_id))


# --- the audit log ----------------------------------------------------------------------------


async def audit_page(
    session: AsyncSession, filters: AuditFilters, *, limit: int, cursor: str | None
) -> tuple[list[AuditEntry], str | None]:
    """One page of audit entries matching the filters, newest first."""
    query = select(AuditEntry)
    if filters.actor is not None:
        query = query.where(AuditEntry.actor_id == filters.actor)
    if filters.entity:
        query = query.where(AuditEntry.entity == filters.entity)
    if filters.entity_id:
        query = query.where(AuditEntry.entity_id == filters.entity_id)
    if filters.action:
        query = query.where(AuditEntry.action == filters.action)
    return await newest_first(session, query, col(AuditEntry.id), limit=limit, cursor=cursor)


async def add_entries(session: AsyncSession, entries: Sequence[AuditEntry]) -> None:
    """Have the session write these audit entries at its next flush."""
    session.add_all(entries)


_ENTRIES = AuditEntry.__table__  # type: ignore[attr-defined]
_SQLITE_TRIGGERS = (
    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_entry'"
)


@asynccontextmanager
async def guard_lifted(conn: AsyncConnection) -> AsyncIterator[None]:
    """Let DELETE reach `audit_entry` inside the caller's transaction; the guard is back
    before the block ends (a failure inside it rolls back to the guarded state)."""
    # A savepoint: even a driver that has not begun a transaction yet (pysqlite's legacy
    # mode runs DDL in autocommit) drops and re-creates the triggers as one unit.
    async with conn.begin_nested():
        if conn.dialect.name == "sqlite":
            # SQLite cannot disable a trigger: drop them and re-create them from the SQL the
            # migration stored, so their definition lives in one place.
            triggers = (await conn.exec_driver_sql(_SQLITE_TRIGGERS)).all()
            for name, _sql in triggers:
                await conn.exec_driver_sql(f'DROP TRIGGER "{name}"')
            yield
            for _name, trigger_sql in triggers:
                await conn.exec_driver_sql(trigger_sql)
        else:
            # USER: ours only, not the internal triggers that enforce foreign keys.
            await conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER USER")
            yield
            await conn.exec_driver_sql("ALTER TABLE audit_entry ENABLE TRIGGER USER")


async def delete_entries_before(conn: AsyncConnection, before: datetime) -> int:
    """Delete the entries written before `before` (the guard must be lifted); give back how
    many went."""
    result = await conn.execute(delete(_ENTRIES).where(_ENTRIES.c.created_at < before))
    return int(result.rowcount)


async def insert_entry(conn: AsyncConnection, **values: Any) -> None:
    """Write one audit entry on a bare connection (no session, so no actor)."""
    await conn.execute(insert(_ENTRIES).values(**values))


# --- the import's transaction -----------------------------------------------------------------


async def plan_each_statement(session: AsyncSession) -> None:
    """On PostgreSQL, plan every statement of this transaction with its own values.

    The import grows the tables it looks up inside one transaction, whose statistics still
    describe them as they were; a generic plan cached early then scans the whole table for
    every chunk (2 s a lookup at 100,000 rows)."""
    if session.get_bind().dialect.name == "postgresql":
        connection = await session.connection()
        await connection.execute(sql("SET LOCAL plan_cache_mode = force_custom_plan"))
