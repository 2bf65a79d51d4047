"""Full-text search behind one interface: SQLite FTS5 or PostgreSQL tsvector + GIN.

Each article is indexed twice: its public text (title, subtitle, excerpt, tags) and its full
text. Readers match the full text only of articles they may read; for every other article
only the public text can match, so a search can never reveal words behind the paywall.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

from sqlalchemy import TextClause, bindparam, text
from sqlmodel.ext.asyncio.session import AsyncSession

from app.articles.live import LIVE_SQL
from app.articles.models import Visibility
from app.core.db import utcnow
from app.core.types import UTCDateTime

SEARCH_TABLE = "article_search"
ALL_VISIBILITIES = {v.value for v in Visibility}
_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12
_LIVE_SQLITE, _LIVE_POSTGRES = LIVE_SQL["sqlite"], LIVE_SQL["postgres"]


@dataclass(frozen=True)
class SearchDocument:
    article_id: int
    visibility: str
    public_text: str
    body_text: str


def public_text(title: str, subtitle: str, excerpt: str, tags: list[str]) -> str:
    """Give back what anyone may match an article by: title, subtitle, teaser and tags."""
    return " ".join([title, subtitle, excerpt, *tags])


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
) -> list[tuple[int, str | None]]:
    """Give back matching article ids, best first; full text only where `readable` allows.

    Relevance is computed among the newest matches only (a window of at least WINDOW), so a
    word found in every article costs the same as a rare one: ranking all of 100,000
    matches took over a second, the window takes milliseconds. Snippets are cut for the
    page only (cutting them for the whole window took 150 ms on 20,000 articles).
    """
    if not words:
        return []
    window = max(WINDOW, offset + limit)
    sqlite = _is_sqlite(session)
    rank = _sqlite if sqlite else _postgres
    full = await rank(session, words, readable, window, public_only=False)
    # Public text is part of the full text, so a reader of everything needs no second query.
    everything = set(readable) == ALL_VISIBILITIES
    public = [] if everything else await rank(session, words, readable, window, public_only=True)
    best: dict[int, float] = {}
    for article_id, score in [*full, *public]:
        best[article_id] = max(score, best.get(article_id, score))
    ranked = sorted(best.items(), key=lambda item: (-item[1], -item[0]))
    page = [article_id for article_id, _ in ranked[offset : offset + limit]]
    if not sqlite:
        # The tsvectors hold no text: the router cuts snippets from public fields.
        return [(article_id, None) for article_id in page]
    # An article matched in its full text is one the reader may read; any other hit matched
    # its public text only, and its snippet is cut from that column alone.
    in_full = {article_id for article_id, _ in full}
    snippets = await _sqlite_snippets(session, words, [i for i in page if i in in_full], True)
    snippets |= await _sqlite_snippets(session, words, [i for i in page if i not in in_full], False)
    return [(article_id, snippets.get(article_id)) for article_id in page]


WINDOW = 2000
_PUBLIC_COLUMN = 1  # article_search columns: visibility, public_text, body_text


def _phrase(words: list[str]) -> str:
    # Every word is quoted, so FTS5 operators (OR, NEAR, *, quotes) are plain text here.
    return " ".join('"' + word.replace('"', "") + '"' for word in words)


async def _sqlite(
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


async def _sqlite_snippets(
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


async def _postgres(
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


def highlight(source: str, words: list[str], *, width: int = 160) -> str:
    """Give back a snippet of `source` around the first match, matches wrapped in <mark>.

    `source` must be text the reader may see; the snippet never reaches beyond it.
    """
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
