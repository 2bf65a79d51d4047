"""The tiers a reader is entitled to, as SQL over a user id column: what the newsletter
snapshot copies into each delivery row and filters a segment of chosen tiers by.

The rule is `app.access.entitlements.entitlements_from` (the tier of each entitling
subscription's plan, the kept plan's tier while `kept_until` is ahead, the tier of each
running comp; staff and a running comp without a tier give every tier).
tests/newsletter/test_segments.py checks that this SQL and the Python rule agree on every
row of a table of readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, case, exists, func, literal, or_
from sqlalchemy import select as sa_select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.repository import staff_condition
from app.billing.models import CompGrant, Plan, Subscription, Tier
from app.billing.repository.entitled import entitling_subscription, held_plan, running_comp

# What the tier list of a reader entitled to every tier (staff, a comp) says.
EVERY_TIER = "*"


class _tier_list(FunctionElement[str]):  # noqa: N801 - SQL function names are lower case
    """`group_concat` / `string_agg` of distinct ids as text, comma-separated, any order."""

    type = String()
    inherit_cache = True


@compiles(_tier_list, "sqlite")
def _tier_list_sqlite(element: _tier_list, compiler: SQLCompiler, **kw: Any) -> str:
    return f"group_concat(DISTINCT {compiler.process(element.clauses, **kw)})"


@compiles(_tier_list)
def _tier_list_default(element: _tier_list, compiler: SQLCompiler, **kw: Any) -> str:
    return f"string_agg(DISTINCT CAST({compiler.process(element.clauses, **kw)} AS TEXT), ',')"


class _trim_commas(FunctionElement[str]):  # noqa: N801 - SQL function names are lower case
    """Text without the commas at its ends (`trim` on SQLite, `btrim` on PostgreSQL)."""

    type = String()
    inherit_cache = True


@compiles(_trim_commas, "sqlite")
def _trim_commas_sqlite(element: _trim_commas, compiler: SQLCompiler, **kw: Any) -> str:
    return f"trim({compiler.process(element.clauses, **kw)}, ',')"


@compiles(_trim_commas)
def _trim_commas_default(element: _trim_commas, compiler: SQLCompiler, **kw: Any) -> str:
    return f"btrim({compiler.process(element.clauses, **kw)}, ',')"


def _running_comp(user_id: Any, now: datetime) -> list[ColumnElement[bool]]:
    return [col(CompGrant.user_id) == user_id, *running_comp(now)]


def every_tier_condition(user_id: Any, now: datetime) -> ColumnElement[bool]:
    """SQL: the reader is entitled to every tier (staff, or a running comp of no tier)."""
    every = exists().where(*_running_comp(user_id, now), col(CompGrant.tier_id).is_(None))
    return or_(staff_condition(user_id), every)


def tier_list(user_id: Any, now: datetime, grace: timedelta) -> ColumnElement[str]:
    """SQL: the reader's tiers as text: "*" for every tier, else their ids comma-separated
    in any order, "" for none (an email-only reader, a free member)."""
    paid = (
        sa_select(_tier_list(col(Plan.tier_id)))
        .select_from(Subscription)
        .join(Plan, held_plan(now))
        .where(col(Subscription.user_id) == user_id, entitling_subscription(now, grace))
        .scalar_subquery()
    )
    comped = (
        sa_select(_tier_list(col(CompGrant.tier_id)))
        .where(*_running_comp(user_id, now), col(CompGrant.tier_id).is_not(None))
        .scalar_subquery()
    )
    # Both lists joined by a comma, without the one an empty side leaves at an end: each
    # subquery is worked out once.
    both = _trim_commas(
        func.coalesce(paid, literal("")) + literal(",") + func.coalesce(comped, literal(""))
    )
    # An email-only reader (no account) asks nothing more of the database.
    return case(
        (user_id.is_(None), literal("")),
        (every_tier_condition(user_id, now), literal(EVERY_TIER)),
        else_=both,
    )


def tiers_condition(
    user_id: Any, tier_ids: Sequence[int], now: datetime, grace: timedelta
) -> ColumnElement[bool]:
    """SQL: the reader is entitled now to at least one of `tier_ids` (`Entitlements.has_any`)."""
    by_plan = exists().where(
        col(Subscription.user_id) == user_id,
        entitling_subscription(now, grace),
        held_plan(now),
        col(Plan.tier_id).in_(list(tier_ids)),
    )
    by_comp = exists().where(
        *_running_comp(user_id, now), col(CompGrant.tier_id).in_(list(tier_ids))
    )
    return or_(every_tier_condition(user_id, now), by_plan, by_comp)


def parse_tier_list(value: str | None) -> tuple[bool, frozenset[int]]:
    """Give back (every tier, tier ids) from what `tier_list` wrote."""
    if not value:
        return False, frozenset()
    if value == EVERY_TIER:
        return True, frozenset()
    return False, frozenset(int(part) for part in value.split(",") if part)


async def tier_slugs(session: AsyncSession, tier_ids: Sequence[int]) -> list[str]:
    """The slugs of these tiers, sorted."""
    if not tier_ids:
        return []
    rows = await session.exec(select(Tier.slug).where(col(Tier.id).in_(list(tier_ids))))
    return sorted(rows.all())
