"""Statement building blocks shared by every repository: raw reads in both dialects, inserts
that skip duplicates, and small ORM helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import insert, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import object_session
from sqlalchemy.sql.dml import Insert
from sqlmodel.ext.asyncio.session import AsyncSession

T = TypeVar("T")
Row = tuple[Any, ...]
Params = dict[str, Any]
_NAMED = re.compile(r"(?<!:):([a-z_][a-z0-9_]*)")


@dataclass(frozen=True)
class Query:
    """One raw statement, in each dialect's SQL, with the same `:name` parameters and columns
    (run by the direct reads and writes, `Database.reads` and `Database.writes()`).

    `planned_per_call` says its best plan depends on the values bound: on the search reads
    PostgreSQL then plans it for them each time, where every other statement keeps the plan
    its text fixes."""

    sqlite: str
    postgres: str
    planned_per_call: bool = False
    _pg_sql: str = field(init=False, repr=False)
    _pg_names: tuple[str, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        names: list[str] = []

        def number(match: re.Match[str]) -> str:
            if match.group(1) not in names:
                names.append(match.group(1))
            return f"${names.index(match.group(1)) + 1}"

        object.__setattr__(self, "_pg_sql", _NAMED.sub(number, self.postgres))
        object.__setattr__(self, "_pg_names", tuple(names))

    @classmethod
    def portable(cls, sql: str, *, planned_per_call: bool = False) -> Query:
        """A statement whose SQL is the same on both databases."""
        return cls(sqlite=sql, postgres=sql, planned_per_call=planned_per_call)

    def for_postgres(self, params: Params) -> tuple[str, list[Any]]:
        return self._pg_sql, [params[name] for name in self._pg_names]


# A list of ids as one parameter (`:ids`), so a statement has one text however many there are.
IN_IDS = {"sqlite": "IN (SELECT value FROM json_each(:ids))", "postgres": "= ANY(:ids)"}


def ids_param(dialect: str, ids: Sequence[int]) -> Any:
    """Give back `ids` as the `:ids` parameter of IN_IDS on `dialect`."""
    if dialect == "sqlite":
        return json.dumps([int(i) for i in ids])
    return [int(i) for i in ids]


def dialect_insert(session: Any, model: Any) -> Any:
    """Give back the session's dialect's INSERT for `model` (it knows ON CONFLICT)."""
    if session.get_bind().dialect.name == "sqlite":
        return sqlite_insert(model)
    return pg_insert(model)


_ON_CONFLICT_DO_NOTHING = text("ON CONFLICT DO NOTHING")


def insert_ignoring_duplicates(model: Any) -> Insert:
    """Give back an INSERT into `model`'s table that skips rows violating a unique key.

    The same SQL on SQLite and PostgreSQL, and cached once compiled: SQLAlchemy never caches
    the dialects' own INSERT ... ON CONFLICT (each use compiled anew, ~0.7 ms a webhook).
    """
    statement = insert(model.__table__)
    # Where the dialects put their ON CONFLICT clause: after VALUES, before any RETURNING,
    # and part of the statement's cache key.
    statement._post_values_clause = _ON_CONFLICT_DO_NOTHING
    return statement


def pk(value: int | None) -> int:
    """Give back a row's primary key, which exists once the row is flushed."""
    if value is None:
        raise RuntimeError("the row has no primary key yet; flush it first")
    return value


def adopt(session: AsyncSession, entity: T) -> T:
    """Give back `entity`, moved from the session it was read in into `session` (no query):
    rows read before a write transaction begins are written through the write session."""
    current = object_session(entity)
    if current is not None and current is not session.sync_session:
        current.expunge(entity)
    session.add(entity)
    return entity
