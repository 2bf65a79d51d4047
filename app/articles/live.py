"""The live-article rule, defined once: what the public may see, for the ORM and for raw SQL.

The rule is written once, over a status column, a publication-time column and a "now"; the ORM
expression applies it to `Article`, and the raw SQL text is that same expression compiled once
per dialect at import time over an `article a` with a `:now` parameter. Scheduled articles
appear on time even when no worker ran at that moment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, and_, func, literal_column, select, union_all
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import aliased
from sqlmodel import col

from app.articles.models import Article, Status
from app.core.db import utcnow

LIVE_STATUSES = (Status.published.value, Status.scheduled.value)


def _live(status: Any, published_at: Any, now: Any) -> ColumnElement[bool]:
    return and_(status.in_(LIVE_STATUSES), published_at.is_not(None), published_at <= now)


def _goes_live_later(status: Any, published_at: Any, now: Any) -> ColumnElement[bool]:
    return and_(status.in_(LIVE_STATUSES), published_at > now)


def is_live(now: datetime | None = None) -> ColumnElement[bool]:
    """ "The public may see it" for ORM queries over `Article`."""
    return _live(col(Article.status), col(Article.published_at), now or utcnow())


def not_live_ids(now: datetime) -> CompoundSelect[tuple[int]]:
    """The ids of the articles the public may not see at `now`: the complement of the rule as
    three ranges of the status index (another status; no time; a time to come), so the few
    of them are found without walking the live ones."""
    status, published_at = col(Article.status), col(Article.published_at)
    others = [s.value for s in Status if s.value not in LIVE_STATUSES]
    return union_all(
        select(col(Article.id)).where(status.in_(others)),
        select(col(Article.id)).where(status.in_(LIVE_STATUSES), published_at.is_(None)),
        select(col(Article.id)).where(_goes_live_later(status, published_at, now)),
    )


_DIALECTS: dict[str, Dialect] = {
    "sqlite": sqlite.dialect(),
    "postgres": postgresql.dialect(),  # type: ignore[no-untyped-call]
}
_NOW: ColumnElement[Any] = literal_column(
    ":now"
)  # left as a parameter of the text, bound by the direct reads
_a = aliased(Article, name="a")


def _sql(expression: Any, dialect: Dialect) -> str:
    return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


# The rule as SQL over an `article a`, per dialect ("sqlite", "postgres"), with `:now`.
LIVE_SQL = {
    name: _sql(_live(_a.status, _a.published_at, _NOW), dialect)
    for name, dialect in _DIALECTS.items()
}


def _portable(expression: Any) -> str:
    texts = {_sql(expression, dialect) for dialect in _DIALECTS.values()}
    if len(texts) != 1:
        raise RuntimeError(f"the SQL differs between dialects: {texts}")
    return texts.pop()


def _next(column: Any) -> Any:
    return select(func.min(column).label("at")).where(column > _NOW)


# The next time an answer changes by itself, for the response cache's freshness check (one
# text for both databases): a scheduled article reaching its time (the status index serves
# it), or an article's time rule (embargo, breaking window, automatic paywall; each indexed).
_MOMENTS = union_all(
    select(func.min(col(Article.published_at)).label("at")).where(
        _goes_live_later(col(Article.status), col(Article.published_at), _NOW)
    ),
    _next(col(Article.free_after)),
    _next(col(Article.free_until)),
    _next(col(Article.gated_at)),
).subquery("moments")
NEXT_CHANGE_SQL = _portable(select(func.min(_MOMENTS.c.at)))
