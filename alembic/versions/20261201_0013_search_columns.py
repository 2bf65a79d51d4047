"""search index on SQLite: a body column per visibility, prefix indexes of 2-6 letters, and
a covering index of the articles' live state by id

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 22:30:00

On SQLite (PostgreSQL's search index is unchanged) the FTS5 tables are dropped and created again,
empty (app/articles/search_rebuild.py; filled once the schema is at head, alembic/env.py). What a reader may match becomes a set of
columns, and prefixes up to six letters are read from an index instead of merged per query.
The hits' live check reads `ix_article_live_by_id` (on SQLite an article row keeps its status
behind its long text, in overflow pages).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.articles import search_rebuild
from app.core.config import Settings

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TABLES = ("article_search", "article_search_title")


def upgrade() -> None:
    op.create_index("ix_article_live_by_id", "article", ["id", "status", "published_at"])
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in _TABLES:
        bind.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    search_rebuild.create(bind, Settings().search_language)


def downgrade() -> None:
    # Back to revision 0012's tables, empty: each entry comes back when its article is saved.
    op.drop_index("ix_article_live_by_id", "article")
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    for table in _TABLES:
        bind.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    stemmer = "porter " if Settings().search_language == "english" else ""
    options = f"prefix = '2 3', detail = column, tokenize = '{stemmer}unicode61 remove_diacritics 2'"
    for table, columns in zip(_TABLES, ("facets, title, public_text, body_text", "title")):
        bind.execute(sa.text(f"CREATE VIRTUAL TABLE {table} USING fts5({columns}, {options})"))
