"""newsletter segments by tier: the tiers an issue of segment `tiers` goes to, and each
delivery's tiers at snapshot time

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-02 01:40:00

`newsletter_issue_tier` (issue, tier) names the tiers of a `tiers` segment. `delivery.tiers`
holds the recipient's tiers when the snapshot was taken ("*" every tier, tier ids
comma-separated, "" none). Rows already there get "": with their paid flag they render as
before (paid articles in full, articles for chosen tiers not). Meant to follow 0017 (comp
grants by tier, on another branch); down_revision is main's head until that is merged.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'newsletter_issue_tier',
        sa.Column('issue_id', sa.Integer(), nullable=False),
        sa.Column('tier_id', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ['issue_id'], ['newsletter_issue.id'],
            name=op.f('fk_newsletter_issue_tier_issue_id_newsletter_issue'), ondelete='CASCADE',
        ),
        sa.ForeignKeyConstraint(
            ['tier_id'], ['tier.id'], name=op.f('fk_newsletter_issue_tier_tier_id_tier'),
            ondelete='RESTRICT',
        ),
        sa.PrimaryKeyConstraint('issue_id', 'tier_id', name=op.f('pk_newsletter_issue_tier')),
    )  # fmt: skip
    op.create_index(
        op.f('ix_newsletter_issue_tier_tier_id'), 'newsletter_issue_tier', ['tier_id']
    )
    # A plain ALTER, never batch mode: rebuilding `delivery` on SQLite would copy the ledger.
    op.add_column(
        'delivery', sa.Column('tiers', sa.Text(), nullable=False, server_default=sa.text("''"))
    )


def downgrade() -> None:
    op.drop_column('delivery', 'tiers')
    op.drop_index(op.f('ix_newsletter_issue_tier_tier_id'), table_name='newsletter_issue_tier')
    op.drop_table('newsletter_issue_tier')
