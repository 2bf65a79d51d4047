"""article pages and archive cards rendered at write time (article_page), the article page's
covering index, and the archive's newest-first index

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:00:00

Every article's page is rendered once here with the app's own renderer of stored pages
(app/articles/page_parts.py), so the article route finds a page for each; later writes keep
them current, and a process that starts renders again any page of another format or URL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from app.articles.page_parts import render_pages
from app.core.config import Settings

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
    render_pages(op.get_bind(), Settings().public_url)


def downgrade() -> None:
    op.drop_index('ix_article_newest', table_name='article')
    op.drop_index('ix_article_reader', table_name='article')
    op.drop_table('article_page')
