"""The archive's pages of stored cards (page_parts) as direct reads: the page's ids from the
indexes alone, newest first, then their cards by key.

Direct reads (`db.reads`), like the article page: on SQLite the stdlib driver on the event
loop, no session and no thread hand-off. A tag's or author's articles are checked for being
live in the covering index `ix_article_live_by_id`: SQLite's planner goes to the article
rows by key instead, where status and publication time sit behind the long text columns, in
overflow pages (the first page of a tag: 8.6 ms through the rows, 1.8 ms through the index;
of an author: 26 and 4 ms, BENCHMARKS.md).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, cast

from app.articles.live import LIVE_SQL
from app.articles.repository import CARDS
from app.articles.schemas import ListFilters
from app.core.db import Query, Reads, as_utc, ids_param, parse_required_ts, utcnow
from app.core.pagination import decode_cursor, encode_cursor

_IN_LINKS = " AND a.id IN (SELECT article_id FROM {table} WHERE {where})"
_BY_TAG = _IN_LINKS.format(
    table="article_tag", where="tag_id = (SELECT id FROM tag WHERE slug = :tag)"
)
_BY_AUTHOR = _IN_LINKS.format(table="article_author", where="user_id = :author")
_AFTER_CURSOR = " AND (a.published_at < :at OR (a.published_at = :at AND a.id < :last_id))"


def _month_bounds(year: int, month: int | None) -> tuple[datetime, datetime]:
    if month is None:
        return datetime(year, 1, 1, tzinfo=UTC), datetime(year + 1, 1, 1, tzinfo=UTC)
    end = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
    return datetime(year, month, 1, tzinfo=UTC), end


def _where(reads: Reads, filters: ListFilters) -> tuple[str, dict[str, Any]]:
    """The filters' SQL (each a fixed fragment; the values are bound) and parameters."""
    sql, params = "", dict[str, Any]()
    if filters.visibility:
        sql, params["visibility"] = sql + " AND a.visibility = :visibility", filters.visibility
    if filters.tag:
        sql, params["tag"] = sql + _BY_TAG, filters.tag
    if filters.author is not None:
        sql, params["author"] = sql + _BY_AUTHOR, filters.author
    since, until = filters.since, filters.until
    if filters.year is not None:
        since, until = _month_bounds(filters.year, filters.month)
    if since is not None:
        sql, params["since"] = sql + " AND a.published_at >= :since", reads.ts(as_utc(since))
    if until is not None:
        sql, params["until"] = sql + " AND a.published_at < :until", reads.ts(as_utc(until))
    return sql, params


@lru_cache(maxsize=128)
def _statement(dialect: str, where: str, linked: bool) -> Query:
    live = LIVE_SQL["sqlite" if dialect == "sqlite" else "postgres"]
    by_id = " INDEXED BY ix_article_live_by_id" if linked and dialect == "sqlite" else ""
    sql = (
        f"SELECT a.id, a.published_at FROM article a{by_id} WHERE {live}{where} "  # noqa: S608
        "ORDER BY a.published_at DESC, a.id DESC LIMIT :n"
    )
    return Query.portable(sql)


async def archive_cards(
    reads: Reads, filters: ListFilters, *, limit: int, cursor: str | None
) -> tuple[list[bytes], str | None]:
    """One page of the archive's stored cards, newest first, and the next page's cursor."""
    where, params = _where(reads, filters)
    if cursor:
        published_raw, last_id = decode_cursor(cursor, (datetime, int))
        where += _AFTER_CURSOR
        params.update(at=reads.ts(as_utc(cast(datetime, published_raw))), last_id=last_id)
    linked = bool(filters.tag) or filters.author is not None
    now = reads.ts(utcnow())
    query = _statement(reads.dialect, where, linked)
    rows = await reads.all(query, {**params, "now": now, "n": limit + 1})
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(parse_required_ts(rows[-1][1]), int(rows[-1][0]))
    ids = [int(row[0]) for row in rows]
    if not ids:
        return [], next_cursor
    cards = await reads.all(CARDS, {"ids": ids_param(reads.dialect, ids), "now": now})
    found = {int(i): bytes(card) for i, card, _ in cards}
    return [found[i] for i in ids if i in found], next_cursor
