"""article pages and archive cards rendered at write time (article_page), the article page's
covering index, and the archive's newest-first index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:00:00

The table is created empty: every article's page is rendered once the schema is at head
(alembic/env.py, articles/derived.after_migrations), with the renderer of that code, so a
later revision that adds a page column never meets a renderer that writes it too early.
Later writes keep the pages current.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'article_page',
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('teaser', sa.LargeBinary(), nullable=False),
        sa.Column('head', sa.LargeBinary(), nullable=False),
        sa.Column('content', sa.LargeBinary(), nullable=False),
        sa.Column('format', sa.Integer(), nullable=False),
        sa.Column('public_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.ForeignKeyConstraint(
            ['article_id'], ['article.id'], name=op.f('fk_article_page_article_id_article'),
            ondelete='CASCADE',
        ),
        sa.PrimaryKeyConstraint('article_id', name=op.f('pk_article_page')),
    )
    op.create_index(
        'ix_article_reader', 'article', ['slug', 'status', 'published_at', 'visibility']
    )
    op.create_index('ix_article_newest', 'article', ['published_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_article_newest', table_name='article')
    op.drop_index('ix_article_reader', table_name='article')
    op.drop_table('article_page')
