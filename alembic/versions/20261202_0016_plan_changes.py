"""plan changes: what a downgrade at period end keeps, the key of the last change, and the
plans and tiers of each history row

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 00:40:00

`subscription` gets `kept_plan_id` (the higher plan a reader keeps after a downgrade at
period end, ON DELETE SET NULL), `kept_until` and `change_key`; `subscription_change` gets
`from_plan_id`, `to_plan_id`, `from_tier_id` and `to_tier_id` (plain ids: history keeps
what it said). Every column is new and nullable, so nothing is copied. On SQLite the columns
`subscription` is built again (see `_rebuild_sqlite_subscription`), its history kept aside.
"""

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op
from alembic.operations import BatchOperations

import app.core.types

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HISTORY_COLUMNS = ('from_plan_id', 'to_plan_id', 'from_tier_id', 'to_tier_id')
FK_KEPT_PLAN = 'fk_subscription_kept_plan_id_plan'


def _subscription_columns() -> list[sa.Column[Any]]:
    return [
        sa.Column('kept_plan_id', sa.Integer(), nullable=True),
        sa.Column('kept_until', app.core.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column('change_key', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    ]


def _rebuild_sqlite_subscription(change: Callable[[BatchOperations], None]) -> None:
    """Apply `change` to SQLite's subscription table, which means building it again.

    A foreign key SQLite adds with ALTER TABLE lives in the column's definition, where it is
    read back without its ON DELETE; a table-level one needs the table built again. Dropping
    the old table with foreign keys on deletes its whole history (ON DELETE CASCADE), so the
    history is kept aside first and put back after.
    """
    bind = op.get_bind()
    bind.exec_driver_sql('CREATE TEMP TABLE keep_subscription_change AS SELECT * FROM subscription_change')
    with op.batch_alter_table('subscription', recreate='always') as batch:
        change(batch)
    bind.exec_driver_sql('INSERT INTO subscription_change SELECT * FROM keep_subscription_change')
    bind.exec_driver_sql('DROP TABLE keep_subscription_change')


def _add_to_subscription(batch: BatchOperations) -> None:
    for column in _subscription_columns():
        batch.add_column(column)
    batch.create_foreign_key(FK_KEPT_PLAN, 'plan', ['kept_plan_id'], ['id'], ondelete='SET NULL')


def _drop_from_subscription(batch: BatchOperations) -> None:
    batch.drop_constraint(FK_KEPT_PLAN, type_='foreignkey')
    for column in _subscription_columns():
        batch.drop_column(column.name)


def upgrade() -> None:
    # The history first: the rebuild below keeps its rows aside with every column.
    for name in HISTORY_COLUMNS:
        op.add_column('subscription_change', sa.Column(name, sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_subscription(_add_to_subscription)
        return
    for column in _subscription_columns():
        op.add_column('subscription', column)
    op.create_foreign_key(
        FK_KEPT_PLAN, 'subscription', 'plan', ['kept_plan_id'], ['id'], ondelete='SET NULL'
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_subscription(_drop_from_subscription)
        # SQLite drops a plain column in place (3.35+); nothing points at these.
        for name in HISTORY_COLUMNS:
            op.execute(f'ALTER TABLE subscription_change DROP COLUMN {name}')
        return
    op.drop_constraint(FK_KEPT_PLAN, 'subscription', type_='foreignkey')
    for column in _subscription_columns():
        op.drop_column('subscription', column.name)
    for name in HISTORY_COLUMNS:
        op.drop_column('subscription_change', name)
