"""access rules: articles for chosen tiers, and time rules (embargo, free while breaking,
automatic paywall by age); the stored page carries the requirement

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-02 01:00:00

Existing articles keep their visibility and get no time rule. Their stored pages are rendered
again after the upgrade (the page format changes: alembic/env.py renders stale pages once
the schema is at head), which fills the two new page columns.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIMES = ('free_after', 'free_until', 'gated_at')


def upgrade() -> None:
    op.create_table(
        'article_tier',
        sa.Column('article_id', sa.Integer(), nullable=False),
        sa.Column('tier_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['article_id'], ['article.id'], name=op.f('fk_article_tier_article_id_article'),
            ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['tier_id'], ['tier.id'], name=op.f('fk_article_tier_tier_id_tier'),
            ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('article_id', 'tier_id', name=op.f('pk_article_tier')),
    )
    op.create_index(op.f('ix_article_tier_tier_id'), 'article_tier', ['tier_id'])
    # Plain ALTERs, never batch mode: rebuilding `article` on SQLite would drop it with
    # foreign keys on, deleting every row that refers to an article.
    for name in _TIMES:
        op.add_column('article', sa.Column(name, app.core.types.UTCDateTime(timezone=True)))
    op.add_column('article', sa.Column('gated_after_days', sa.Integer(), nullable=True))
    op.add_column(
        'article', sa.Column('auto_paywall', sa.Boolean(), nullable=False, server_default=sa.true())
    )
    for name in _TIMES:
        op.create_index(op.f(f'ix_article_{name}'), 'article', [name])
    for name in ('structured', 'rules'):
        op.add_column(
            'article_page',
            sa.Column(name, sa.LargeBinary(), nullable=False, server_default=sa.text("''")),
        )
    op.add_column('article_page', sa.Column('paywall_days', sa.Integer(), nullable=True))


def downgrade() -> None:
    for name in ('paywall_days', 'rules', 'structured'):
        op.drop_column('article_page', name)
    for name in _TIMES:
        op.drop_index(op.f(f'ix_article_{name}'), table_name='article')
    for name in ('auto_paywall', 'gated_after_days', *_TIMES):
        op.drop_column('article', name)
    op.drop_index(op.f('ix_article_tier_tier_id'), table_name='article_tier')
    op.drop_table('article_tier')
