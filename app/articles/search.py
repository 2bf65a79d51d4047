"""Full-text search behind one interface: SQLite FTS5 or PostgreSQL tsvector + GIN.

Each article is indexed twice: its public text (title, subtitle, excerpt, tags) and its full
text. Readers match the full text only of articles they may read; for every other article
only the public text can match, so a search can never reveal words behind the paywall.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import text
from sqlmodel.ext.asyncio.session import AsyncSession

SEARCH_TABLE = "article_search"
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12


@dataclass(frozen=True)
class SearchDocument:
    article_id: int
    visibility: str
    public_text: str
    body_text: str


def terms(query: str) -> list[str]:
    """Give back the words of a user query; all search syntax is dropped, never interpreted."""
    return [word.lower() for word in _WORD.findall(query)][:MAX_TERMS]


def _is_sqlite(session: AsyncSession) -> bool:
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
    if _is_sqlite(session):
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
    column = "rowid" if _is_sqlite(session) else "article_id"
    await session.exec(  # type: ignore[call-overload]
        text(f"DELETE FROM {SEARCH_TABLE} WHERE {column} = :id"),  # noqa: S608
        params={"id": article_id},
    )


async def search_ids(
    session: AsyncSession, words: list[str], readable: list[str], *, limit: int, offset: int = 0
) -> list[int]:
    """Give back matching article ids, best first; full text only where `readable` allows."""
    if not words:
        return []
    if _is_sqlite(session):
        return await _sqlite(session, words, readable, limit, offset)
    return await _postgres(session, words, readable, limit, offset)


async def _sqlite(
    session: AsyncSession, words: list[str], readable: list[str], limit: int, offset: int
) -> list[int]:
    # Every word is quoted, so FTS5 operators (OR, NEAR, *, quotes) are plain text here.
    phrase = " ".join('"' + word.replace('"', "") + '"' for word in words)
    marks = ", ".join(f":v{i}" for i in range(len(readable))) or "NULL"
    sql = f"""
        SELECT id FROM (
            SELECT rowid AS id, bm25({SEARCH_TABLE}) AS score FROM {SEARCH_TABLE}
            WHERE {SEARCH_TABLE} MATCH :full AND visibility IN ({marks})
            UNION ALL
            SELECT rowid AS id, bm25({SEARCH_TABLE}) AS score FROM {SEARCH_TABLE}
            WHERE {SEARCH_TABLE} MATCH :public
        ) GROUP BY id ORDER BY MIN(score), id DESC LIMIT :limit OFFSET :offset
    """  # noqa: S608 - only our table name and placeholders are formatted in
    params: dict[str, object] = {
        "full": phrase,
        "public": "{public_text} : (" + phrase + ")",
        "limit": limit,
        "offset": offset,
    }
    params.update({f"v{i}": v for i, v in enumerate(readable)})
    rows = await session.exec(text(sql), params=params)  # type: ignore[call-overload]
    return [int(row[0]) for row in rows]


async def _postgres(
    session: AsyncSession, words: list[str], readable: list[str], limit: int, offset: int
) -> list[int]:
    sql = f"""
        SELECT article_id FROM {SEARCH_TABLE}, plainto_tsquery('simple', :q) AS query
        WHERE (visibility = ANY(:readable) AND full_tsv @@ query) OR public_tsv @@ query
        ORDER BY ts_rank(CASE WHEN visibility = ANY(:readable) THEN full_tsv
                              ELSE public_tsv END, query) DESC, article_id DESC
        LIMIT :limit OFFSET :offset
    """  # noqa: S608 - only our table name is formatted in
    rows = await session.exec(  # type: ignore[call-overload]
        text(sql),
        params={"q": " ".join(words), "readable": readable, "limit": limit, "offset": offset},
    )
    return [int(row[0]) for row in rows]


def highlight(source: str, words: list[str], *, width: int = 160) -> str:
    """Give back a snippet of `source` around the first match, matches wrapped in <mark>.

    `source` must be text the reader may see; the snippet never reaches beyond it.
    """
    from html import escape

    if not source:
        return ""
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None
    match = pattern.search(source) if pattern else None
    start = max(0, (match.start() if match else 0) - width // 3)
    window = source[start : start + width]
    if start > 0:
        window = "…" + window.split(" ", 1)[-1]
    if start + width < len(source):
        window = window.rsplit(" ", 1)[0] + "…"
    out = escape(window)
    if pattern:
        out = re.sub(
            "|".join(re.escape(escape(w)) for w in words),
            lambda m: f"<mark>{m.group(0)}</mark>",
            out,
            flags=re.IGNORECASE,
        )
    return out
