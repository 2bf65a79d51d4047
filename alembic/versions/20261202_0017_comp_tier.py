"""comp tier: a complimentary grant may name one tier; NULL keeps meaning every tier

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-02 00:40:00

Existing comps keep a NULL tier, so they keep giving every tier, as they did before tiers.
The foreign key is ON DELETE RESTRICT: SET NULL would turn a one-tier comp into full access.
On SQLite batch mode rebuilds comp_grant, which no table points at, so nothing else is
touched.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('comp_grant', schema=None) as batch_op:
        batch_op.add_column(sa.Column('tier_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f('fk_comp_grant_tier_id_tier'), 'tier', ['tier_id'], ['id'],
            ondelete='RESTRICT',
        )  # fmt: skip


def downgrade() -> None:
    with op.batch_alter_table('comp_grant', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_comp_grant_tier_id_tier'), type_='foreignkey')
        batch_op.drop_column('tier_id')
