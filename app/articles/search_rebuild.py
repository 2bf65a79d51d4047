"""The search index's schema, a full rebuild from the article tables (for the migrations that
shape the index, and to run again when its language changes), and the rewrite of chosen
entries when a name they hold changes (a tag's, an author's).

Synchronous on purpose: Alembic runs it on its own connection, the services through
`run_sync` of theirs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.access.rules import Visibility
from app.articles.markdown import plain_text
from app.articles.search import public_words
from app.articles.search_index import (
    ALL_VISIBILITIES,
    BODY_COLUMNS,
    INSERT_SQL,
    PREFIXES,
    SEARCH_TABLE,
    TITLE_TABLE,
    SearchDocument,
    entry_params,
)

BATCH = 500


def create(bind: sa.Connection, language: str) -> None:
    """Create the search index (FTS5 table, or table, functions and indexes) in `language`."""
    if bind.dialect.name == "sqlite":
        # FTS5 stems English only (porter); other languages are matched unstemmed.
        stemmer = "porter " if language == "english" else ""
        tokenize = f"tokenize = '{stemmer}unicode61 remove_diacritics 2'"
        options = f"prefix = '{PREFIXES}', detail = column, {tokenize}"
        bodies = ", ".join(BODY_COLUMNS.values())
        for table, columns in (
            (SEARCH_TABLE, f"facets, title, public_text, {bodies}"),
            (TITLE_TABLE, "title"),
        ):
            bind.execute(sa.text(f"CREATE VIRTUAL TABLE {table} USING fts5({columns}, {options})"))
        return
    # The language lives in these two functions, so the index and every query use one
    # configuration; both are inlined by the planner (constant words fold at plan time,
    # where the statistics of each word choose the plan).
    config = bind.execute(sa.text("SELECT CAST(CAST(:l AS regconfig) AS text)"), {"l": language})
    quoted = "'" + str(config.scalar_one()).replace("'", "''") + "'"
    for name, kind in (("vector", "tsvector"), ("query", "tsquery")):
        function = "to_tsvector" if kind == "tsvector" else "to_tsquery"
        bind.execute(
            sa.text(
                f"CREATE FUNCTION article_search_{name}(words text) RETURNS {kind} "
                "LANGUAGE sql IMMUTABLE PARALLEL SAFE "
                f"AS $$ SELECT {function}(CAST({quoted} AS regconfig), words) $$"
            )
        )
    bind.execute(
        sa.text(
            "CREATE TABLE article_search ("
            "article_id integer PRIMARY KEY REFERENCES article(id) ON DELETE CASCADE, "
            "sort_key bigint NOT NULL, visibility varchar(16) NOT NULL, "
            "tag_ids integer[] NOT NULL, author_ids integer[] NOT NULL, "
            "title_tsv tsvector NOT NULL, public_tsv tsvector NOT NULL, "
            "full_tsv tsvector NOT NULL)"
        )
    )
    bind.execute(sa.text("CREATE INDEX ix_article_search_key ON article_search (sort_key)"))
    for column in ("title_tsv", "public_tsv", "full_tsv", "tag_ids", "author_ids"):
        index = f"CREATE INDEX ix_article_search_{column} ON article_search USING gin ({column})"
        bind.execute(sa.text(index))


def drop(bind: sa.Connection) -> None:
    """Drop the search index and its functions."""
    bind.execute(sa.text("DROP TABLE IF EXISTS article_search"))
    bind.execute(sa.text("DROP TABLE IF EXISTS article_search_title"))
    if bind.dialect.name != "sqlite":
        bind.execute(sa.text("DROP FUNCTION IF EXISTS article_search_vector(text)"))
        bind.execute(sa.text("DROP FUNCTION IF EXISTS article_search_query(text)"))


def fill(bind: sa.Connection) -> int:
    """Index every article as it stands; give back how many."""
    done = 0
    last = 0
    while True:
        ids = [
            row[0]
            for row in bind.execute(
                sa.text("SELECT id FROM article WHERE id > :last ORDER BY id LIMIT :n"),
                {"last": last, "n": BATCH},
            )
        ]
        if not ids:
            break
        _insert(bind, documents(bind, ids))
        done, last = done + len(ids), ids[-1]
    if bind.dialect.name == "sqlite":
        # One segment per table after a bulk load: each query then reads one doclist a term
        # (writes since merge by FTS5's automerge).
        for table in (SEARCH_TABLE, TITLE_TABLE):
            bind.execute(sa.text(f"INSERT INTO {table} ({table}) VALUES ('optimize')"))  # noqa: S608
    return done


# Pages of the index one merge step writes: a short write transaction (SQLite has one writer).
MERGE_PAGES = 200


def merge_step(bind: sa.Connection, pages: int = MERGE_PAGES) -> int:
    """Merge up to `pages` pages of each search table towards one segment (SQLite only);
    give back how many tables had work left (0 once both are one segment).

    Every write adds a segment, and FTS5's automerge keeps several levels of them: on the
    bench archive 11 and 6, and an AND of a common word with a rare one read the common
    word's doclist from each, 4-7 times the cost on one segment (BENCHMARKS.md). A negative
    page count asks for the incremental form of 'optimize' (all segments into one), which
    is a no-op on a single segment; work was done when total_changes() moved by 2 or more.
    """
    busy = 0
    for table in (SEARCH_TABLE, TITLE_TABLE):
        before = bind.execute(sa.text("SELECT total_changes()")).scalar_one()
        bind.execute(
            sa.text(f"INSERT INTO {table} ({table}, rank) VALUES ('merge', :pages)"),  # noqa: S608
            {"pages": -abs(pages)},
        )
        busy += bind.execute(sa.text("SELECT total_changes()")).scalar_one() - before >= 2
    return busy


def segments(bind: sa.Connection, table: str) -> int:
    """Give back how many segments an SQLite search table holds, from FTS5's structure
    record (row 10 of its _data table: a cookie, maybe a version marker, then the number of
    levels and of segments as varints)."""
    query = sa.text(f"SELECT block FROM {table}_data WHERE id = 10")  # noqa: S608
    blob = bytes(bind.execute(query).scalar_one())
    at = 8 if blob[4:8] == b"\xff\x00\x00\x01" else 4
    _levels, at = _varint(blob, at)
    return _varint(blob, at)[0]


def _varint(blob: bytes, at: int) -> tuple[int, int]:
    value = 0
    for n in range(9):
        byte = blob[at]
        at += 1
        if n == 8:
            return value << 8 | byte, at
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            break
    return value, at


def fill_if_empty(bind: sa.Connection) -> bool:
    """Index every article if the index holds no entry (it was just created); give back
    whether it did."""
    if bind.execute(sa.text(f"SELECT 1 FROM {SEARCH_TABLE} LIMIT 1")).first() is not None:  # noqa: S608
        return False
    fill(bind)
    return True


def reindex(bind: sa.Connection, ids: Sequence[int]) -> None:
    """Write the entries of these articles again, as they now stand."""
    for start in range(0, len(ids), BATCH):
        chunk = list(ids[start : start + BATCH])
        _remove(bind, chunk)
        _insert(bind, documents(bind, chunk))


def _insert(bind: sa.Connection, docs: list[SearchDocument]) -> None:
    if not docs:
        return
    params = [entry_params(doc) for doc in docs]
    for sql in INSERT_SQL["sqlite" if bind.dialect.name == "sqlite" else "postgresql"]:
        bind.execute(sa.text(sql), params)


def _remove(bind: sa.Connection, ids: list[int]) -> None:
    if bind.dialect.name != "sqlite":
        sql = f"DELETE FROM {SEARCH_TABLE} WHERE article_id = ANY(:ids)"  # noqa: S608
        bind.execute(sa.text(sql), {"ids": ids})
        return
    # The rowid is the sort key, which may have changed since: the id facets find them.
    wanted = " OR ".join(f'"i{int(i)}"' for i in ids)
    found = bind.execute(
        sa.text(f"SELECT rowid FROM {SEARCH_TABLE} WHERE {SEARCH_TABLE} MATCH :q"),  # noqa: S608
        {"q": f"facets : ({wanted})"},
    )
    keys = [{"key": row[0]} for row in found]
    for table in (SEARCH_TABLE, TITLE_TABLE) if keys else ():
        bind.execute(sa.text(f"DELETE FROM {table} WHERE rowid = :key"), keys)  # noqa: S608


def _by_ids(sql: str) -> sa.TextClause:
    return sa.text(sql).bindparams(sa.bindparam("ids", expanding=True))


_ARTICLES = _by_ids(
    "SELECT id, status, published_at, visibility, gated_at, title, subtitle, excerpt,"
    " content_html FROM article WHERE id IN :ids ORDER BY id"
)
_TAGS = _by_ids(
    "SELECT at.article_id, t.id, t.name FROM article_tag at JOIN tag t ON t.id = at.tag_id"
    " WHERE at.article_id IN :ids ORDER BY t.name"
)
_AUTHORS = _by_ids(
    'SELECT aa.article_id, u.id, u.display_name FROM article_author aa JOIN "user" u'
    " ON u.id = aa.user_id WHERE aa.article_id IN :ids ORDER BY aa.position"
)


def documents(bind: sa.Connection, ids: Sequence[int]) -> list[SearchDocument]:
    """Give back the search documents of these articles (those that exist), by id."""
    if not ids:
        return []
    params = {"ids": [int(i) for i in ids]}
    rows = bind.execute(_ARTICLES, params).all()
    tags, authors = _names(bind, _TAGS, params), _names(bind, _AUTHORS, params)
    return [_document(row, tags.get(row.id, []), authors.get(row.id, [])) for row in rows]


def _names(bind: sa.Connection, sql: sa.TextClause, params: dict[str, Any]) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for article_id, item_id, name in bind.execute(sql, params):
        out.setdefault(article_id, []).append((item_id, name or ""))
    return out


def index_visibility(visibility: str, gated_at: object) -> str:
    """The visibility an article is indexed under: the strictest it may have, so no time
    rule can make a body match for a reader it is gated for (a public article with an
    automatic paywall is indexed as `paid`; an embargoed one as its visibility)."""
    if visibility == Visibility.public.value and gated_at is not None:
        return Visibility.paid.value
    return visibility


def _document(row: Any, tags: list[Any], authors: list[Any]) -> SearchDocument:
    visibility = index_visibility(row.visibility, row.gated_at)
    return SearchDocument(
        article_id=row.id,
        status=row.status,
        published_at=_aware(row.published_at),
        visibility=visibility,
        title=row.title,
        public_text=public_words(
            row.subtitle, row.excerpt, [n for _, n in tags], [n for _, n in authors]
        ),
        # A `tiers` article's body is matched by nobody (the index tells no tiers apart).
        body_text="" if visibility not in ALL_VISIBILITIES else plain_text(row.content_html),
        tag_ids=tuple(i for i, _ in tags),
        author_ids=tuple(i for i, _ in authors),
    )


def _aware(value: datetime | str | None) -> datetime | None:
    # Raw SQL on SQLite gives the stored text back, PostgreSQL an aware datetime.
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
