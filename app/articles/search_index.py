"""The search index's statements: SQLite FTS5 (`article_search`, a virtual table) or PostgreSQL
tsvector + GIN. Only live articles match: drafts and scheduled ones are indexed, never found.
The engine that ranks and merges the results is search.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy import TextClause, bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.decision import Visibility
from app.articles.live import LIVE_SQL
from app.core.db import utcnow
from app.core.types import UTCDateTime

SEARCH_TABLE = "article_search"
ALL_VISIBILITIES = {v.value for v in Visibility}
_PUBLIC_COLUMN = 1  # article_search columns: visibility, public_text, body_text
_LIVE_SQLITE, _LIVE_POSTGRES = LIVE_SQL["sqlite"], LIVE_SQL["postgres"]


@dataclass(frozen=True)
class SearchDocument:
    article_id: int
    visibility: str
    public_text: str
    body_text: str


def is_sqlite(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "sqlite"


async def index(session: AsyncSession, doc: SearchDocument) -> None:
    """Add or replace an article's entry in the search index."""
    await remove(session, doc.article_id)
    params = {
        "id": doc.article_id,
        "visibility": doc.visibility,
        "public": doc.public_text,
        "body": doc.body_text,
    }
    if is_sqlite(session):
        await session.exec(  # type: ignore[call-overload]
            text(
                f"INSERT INTO {SEARCH_TABLE} (rowid, visibility, public_text, body_text) "  # noqa: S608
                "VALUES (:id, :visibility, :public, :body)"
            ),
            params=params,
        )
    else:
        await session.exec(  # type: ignore[call-overload]
            text(
                f"INSERT INTO {SEARCH_TABLE} (article_id, visibility, public_tsv, full_tsv) "  # noqa: S608
                "VALUES (:id, :visibility, to_tsvector('simple', :public), "
                "to_tsvector('simple', :public || ' ' || :body))"
            ),
            params=params,
        )


async def remove(session: AsyncSession, article_id: int) -> None:
    """Drop an article from the search index."""
    column = "rowid" if is_sqlite(session) else "article_id"
    await session.exec(  # type: ignore[call-overload]
        text(f"DELETE FROM {SEARCH_TABLE} WHERE {column} = :id"),  # noqa: S608
        params={"id": article_id},
    )


def _phrase(words: list[str]) -> str:
    # Every word is quoted, so FTS5 operators (OR, NEAR, *, quotes) are plain text here.
    return " ".join('"' + word.replace('"', "") + '"' for word in words)


async def rank_sqlite(
    session: AsyncSession, words: list[str], readable: list[str], window: int, *, public_only: bool
) -> list[tuple[int, float]]:
    phrase = _phrase(words)
    params: dict[str, object] = {"window": window}
    where = ""
    if public_only:
        params["q"] = "public_text : (" + phrase + ")"
    else:
        params["q"] = phrase
        if set(readable) != ALL_VISIBILITIES:
            # Reading the unindexed visibility of each match is the slow part of a search:
            # a reader who may read everything skips it.
            params.update({f"v{i}": v for i, v in enumerate(readable)})
            marks = ", ".join(f":v{i}" for i in range(len(readable))) or "NULL"
            where = f"AND visibility IN ({marks})"
    # bm25 is lower for better matches; negate it so that higher is better on both dialects.
    # Only live articles match: drafts and scheduled ones are indexed, but never found.
    sql = f"""
        SELECT rowid, -bm25({SEARCH_TABLE}) FROM {SEARCH_TABLE}
        WHERE {SEARCH_TABLE} MATCH :q {where}
        AND EXISTS (SELECT 1 FROM article a WHERE a.id = {SEARCH_TABLE}.rowid AND {_LIVE_SQLITE})
        ORDER BY rowid DESC LIMIT :window
    """  # noqa: S608 - only our table name and placeholders are formatted in
    params["now"] = utcnow()
    rows = await session.exec(_live_text(sql), params=params)  # type: ignore[call-overload]
    return [(int(row[0]), float(row[1])) for row in rows]


async def sqlite_snippets(
    session: AsyncSession, words: list[str], ids: list[int], readable: bool
) -> dict[int, str | None]:
    if not ids:
        return {}
    phrase = _phrase(words)
    # snippet() runs in the FTS engine. For a hit the reader may not read, both the match
    # and the snippet are held to the public column. Marks are control characters, so the
    # text can be HTML-escaped before they become tags.
    column = -1 if readable else _PUBLIC_COLUMN
    query = phrase if readable else "public_text : (" + phrase + ")"
    params: dict[str, object] = {"q": query, **{f"i{n}": i for n, i in enumerate(ids)}}
    marks = ", ".join(f":i{n}" for n in range(len(ids)))
    sql = f"""
        SELECT rowid, snippet({SEARCH_TABLE}, {column}, char(2), char(3), '…', 24)
        FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :q AND rowid IN ({marks})
    """  # noqa: S608 - only our table name, a column number and placeholders are formatted in
    rows = await session.exec(text(sql), params=params)  # type: ignore[call-overload]
    return {int(row[0]): _marked(row[1]) for row in rows}


def _marked(snippet: str | None) -> str | None:
    if not snippet:
        return None
    return escape(snippet).replace("\x02", "<mark>").replace("\x03", "</mark>")


async def rank_postgres(
    session: AsyncSession, words: list[str], readable: list[str], window: int, *, public_only: bool
) -> list[tuple[int, float]]:
    column = "public_tsv" if public_only else "full_tsv"
    limited = not public_only and set(readable) != ALL_VISIBILITIES
    where = "AND visibility = ANY(:readable)" if limited else ""
    sql = f"""
        SELECT article_id, ts_rank({column}, query) FROM (
            SELECT article_id, {column} FROM {SEARCH_TABLE}, plainto_tsquery('simple', :q) AS q0
            WHERE {column} @@ q0 {where}
            AND EXISTS (SELECT 1 FROM article a WHERE a.id = article_id AND {_LIVE_POSTGRES})
            ORDER BY article_id DESC LIMIT :window
        ) AS newest, plainto_tsquery('simple', :q) AS query
    """  # noqa: S608 - only our table and column names are formatted in
    params = {"q": " ".join(words), "readable": readable, "window": window, "now": utcnow()}
    rows = await session.exec(_live_text(sql), params=params)  # type: ignore[call-overload]
    return [(int(row[0]), float(row[1])) for row in rows]


def _live_text(sql: str) -> TextClause:
    # `:now` bound as the column type, so it compares as stored timestamps do on SQLite.
    return text(sql).bindparams(bindparam("now", type_=UTCDateTime()))
