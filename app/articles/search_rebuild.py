"""The search index's schema and a full rebuild from the article tables, for the migration
that introduced them (and to run again when the index's language changes).

Synchronous on purpose: Alembic runs it on its own connection.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from app.articles.markdown import plain_text
from app.articles.search import public_words
from app.articles.search_index import (
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
    inserts = INSERT_SQL["postgresql" if bind.dialect.name != "sqlite" else "sqlite"]
    done = 0
    for batch in _batches(bind):
        params = [entry_params(doc) for doc in batch]
        for sql in inserts:
            bind.execute(sa.text(sql), params)
        done += len(batch)
    if bind.dialect.name == "sqlite":
        # One segment per table after a bulk load: each query then reads one doclist a term
        # (writes since merge by FTS5's automerge).
        for table in (SEARCH_TABLE, TITLE_TABLE):
            bind.execute(sa.text(f"INSERT INTO {table} ({table}) VALUES ('optimize')"))  # noqa: S608
    return done


def _batches(bind: sa.Connection) -> Iterator[list[SearchDocument]]:
    last = 0
    while True:
        rows = bind.execute(
            sa.text(
                "SELECT id, status, published_at, visibility, title, subtitle, excerpt, "
                "content_html FROM article WHERE id > :last ORDER BY id LIMIT :n"
            ),
            {"last": last, "n": BATCH},
        ).all()
        if not rows:
            return
        first, last = rows[0].id, rows[-1].id
        tags = _names(
            bind,
            "SELECT at.article_id, t.id, t.name FROM article_tag at JOIN tag t ON t.id = at.tag_id"
            " WHERE at.article_id BETWEEN :a AND :b ORDER BY t.name",
            first,
            last,
        )
        authors = _names(
            bind,
            'SELECT aa.article_id, u.id, u.display_name FROM article_author aa JOIN "user" u'
            " ON u.id = aa.user_id WHERE aa.article_id BETWEEN :a AND :b ORDER BY aa.position",
            first,
            last,
        )
        yield [_document(row, tags.get(row.id, []), authors.get(row.id, [])) for row in rows]


def _names(bind: sa.Connection, sql: str, first: int, last: int) -> dict[int, list[Any]]:
    out: dict[int, list[Any]] = {}
    for article_id, item_id, name in bind.execute(sa.text(sql), {"a": first, "b": last}):
        out.setdefault(article_id, []).append((item_id, name or ""))
    return out


def _document(row: Any, tags: list[Any], authors: list[Any]) -> SearchDocument:
    return SearchDocument(
        article_id=row.id,
        status=row.status,
        published_at=_aware(row.published_at),
        visibility=row.visibility,
        title=row.title,
        public_text=public_words(
            row.subtitle, row.excerpt, [n for _, n in tags], [n for _, n in authors]
        ),
        body_text=plain_text(row.content_html),
        tag_ids=tuple(i for i, _ in tags),
        author_ids=tuple(i for i, _ in authors),
    )


def _aware(value: datetime | str | None) -> datetime | None:
    # Raw SQL on SQLite gives the stored text back, PostgreSQL an aware datetime.
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
