"""search index keyed for early stopping, stemmed, with facets; rebuilt from the articles

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 21:00:00

The index is dropped and created again, empty (it is filled once the schema is at head:
alembic/env.py, articles/derived.after_migrations), in BROADSHEET_SEARCH_LANGUAGE (app/articles/
search_rebuild.py): entries ordered by a sort key that also says what is live, title and
public text apart, tag and author facets, author names in the public text. To change the
language later, downgrade to 0011 and upgrade again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.articles import search_rebuild
from app.core.config import Settings

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    bind = op.get_bind()
    bind.execute(sa.text("DROP TABLE IF EXISTS article_search"))
    search_rebuild.create(bind, Settings().search_language)


def downgrade() -> None:
    # Back to revision 0002's shape, empty: each article's entry comes back when it is saved.
    bind = op.get_bind()
    search_rebuild.drop(bind)
    sqlite = bind.dialect.name == "sqlite"
    if sqlite:
        op.execute(
            "CREATE VIRTUAL TABLE article_search USING fts5("
            "visibility UNINDEXED, public_text, body_text, "
            "tokenize = 'unicode61 remove_diacritics 2')"
        )
    else:
        op.execute(
            "CREATE TABLE article_search ("
            "article_id integer PRIMARY KEY REFERENCES article(id) ON DELETE CASCADE, "
            "visibility varchar(16) NOT NULL, public_tsv tsvector NOT NULL, "
            "full_tsv tsvector NOT NULL)"
        )
        op.execute("CREATE INDEX ix_article_search_public ON article_search USING gin (public_tsv)")
        op.execute("CREATE INDEX ix_article_search_full ON article_search USING gin (full_tsv)")
