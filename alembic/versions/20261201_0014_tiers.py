"""tiers: what readers buy, each sold through its plans; every existing plan moves into one
default paid tier

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 22:00:00

A tier named "Paid" (slug `paid`) is created as the default tier, and every plan already
there becomes one of its prices. On SQLite the plan table is rebuilt by hand (see
`_rebuild_sqlite_plan`): batch mode would drop the old table with foreign keys on, which
nulls every subscription's plan and deletes every checkout record.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import app.core.types
from app.core.db import utcnow

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DEFAULT_TIER = {'name': 'Paid', 'slug': 'paid'}
PLAN_COLUMNS = (
    'id', 'name', 'description', 'interval', 'amount', 'currency', 'trial_days',
    'stripe_product_id', 'stripe_price_id', 'active', 'sort_order', 'created_at',
)  # fmt: skip


def _plan_table(*, with_tier: bool) -> list[Any]:
    """The plan table's columns and constraints as revision 0003 made them, plus the tier."""
    items: list[Any] = [
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('interval', sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column('amount', sa.Integer(), nullable=False),
        sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
        sa.Column('trial_days', sa.Integer(), nullable=False),
        sa.Column('stripe_product_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('stripe_price_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('sort_order', sa.Integer(), nullable=False),
        sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_plan')),
        sa.UniqueConstraint('stripe_price_id', name=op.f('uq_plan_stripe_price_id')),
    ]
    if with_tier:
        items += [
            sa.Column('tier_id', sa.Integer(), nullable=False),
            sa.ForeignKeyConstraint(['tier_id'], ['tier.id'], name=op.f('fk_plan_tier_id_tier')),
        ]
    return items


# The tables whose rows point at a plan, and what SQLite does to them when a plan goes.
PLAN_CHILDREN = {('subscription', 'plan_id', 'SET NULL'), ('checkout_record', 'plan_id', 'CASCADE')}


def _plan_children(bind: sa.Connection) -> set[tuple[str, str, str]]:
    tables = bind.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'table'")
    found = set()
    for (table,) in tables.all():
        for key in bind.exec_driver_sql(f'PRAGMA foreign_key_list("{table}")').mappings():
            if key['table'] == 'plan':
                found.add((table, key['from'], key['on_delete']))
    return found


def _rebuild_sqlite_plan(*, tier_id: int | None) -> None:
    """Give SQLite's plan table a tier column (`tier_id` for every row) or take it away.

    SQLite changes a column's constraints only by building the table again, and dropping the
    old one with foreign keys on (they cannot be turned off inside the migration's
    transaction) nulls every subscription's plan and deletes every checkout record: both are
    kept aside first and put back after.
    """
    bind = op.get_bind()
    children = _plan_children(bind)
    if children != PLAN_CHILDREN:
        raise RuntimeError(f'tables pointing at plan changed: {sorted(children)}; keep them too')
    bind.exec_driver_sql(
        'CREATE TEMP TABLE keep_subscription_plan AS'
        ' SELECT id, plan_id FROM subscription WHERE plan_id IS NOT NULL'
    )
    bind.exec_driver_sql('CREATE TEMP TABLE keep_checkout_record AS SELECT * FROM checkout_record')
    op.create_table('plan_0014', *_plan_table(with_tier=tier_id is not None))
    columns = ', '.join(PLAN_COLUMNS)
    tier = f', {int(tier_id)}' if tier_id is not None else ''
    bind.exec_driver_sql(
        f'INSERT INTO plan_0014 ({columns}{", tier_id" if tier else ""})'
        f' SELECT {columns}{tier} FROM plan'
    )
    op.drop_table('plan')
    op.rename_table('plan_0014', 'plan')
    bind.exec_driver_sql(
        'UPDATE subscription SET plan_id = (SELECT k.plan_id FROM keep_subscription_plan k'
        ' WHERE k.id = subscription.id) WHERE id IN (SELECT id FROM keep_subscription_plan)'
    )
    bind.exec_driver_sql('INSERT INTO checkout_record SELECT * FROM keep_checkout_record')
    bind.exec_driver_sql('DROP TABLE keep_subscription_plan')
    bind.exec_driver_sql('DROP TABLE keep_checkout_record')


def upgrade() -> None:
    tier = op.create_table(
        'tier',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=120), nullable=False),
        sa.Column('slug', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column('description', sqlmodel.sql.sqltypes.AutoString(length=1000), nullable=False),
        sa.Column('benefits', sa.JSON(), nullable=False),
        sa.Column('visible', sa.Boolean(), nullable=False),
        sa.Column('sort_order', sa.Integer(), nullable=False),
        sa.Column('active', sa.Boolean(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False),
        sa.Column('stripe_product_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column('created_at', app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_tier')),
        sa.UniqueConstraint('slug', name=op.f('uq_tier_slug')),
        sa.UniqueConstraint('stripe_product_id', name=op.f('uq_tier_stripe_product_id')),
    )
    assert tier is not None
    op.create_index(
        'uq_tier_default', 'tier', ['is_default'], unique=True,
        sqlite_where=sa.literal_column('is_default'),
        postgresql_where=sa.literal_column('is_default'),
    )  # fmt: skip
    bind = op.get_bind()
    bind.execute(
        tier.insert().values(
            description='', benefits=[], visible=True, sort_order=0, active=True,
            is_default=True, created_at=utcnow(), **DEFAULT_TIER,
        )
    )  # fmt: skip
    tier_id = bind.execute(sa.select(tier.c.id).where(tier.c.is_default)).scalar_one()
    if bind.dialect.name == 'sqlite':
        _rebuild_sqlite_plan(tier_id=tier_id)
    else:
        op.add_column('plan', sa.Column('tier_id', sa.Integer(), nullable=True))
        op.execute(sa.text('UPDATE plan SET tier_id = :tier').bindparams(tier=tier_id))
        op.alter_column('plan', 'tier_id', nullable=False)
        op.create_foreign_key(op.f('fk_plan_tier_id_tier'), 'plan', 'tier', ['tier_id'], ['id'])
    op.create_index(op.f('ix_plan_tier_id'), 'plan', ['tier_id'])


def downgrade() -> None:
    op.drop_index(op.f('ix_plan_tier_id'), table_name='plan')
    if op.get_bind().dialect.name == 'sqlite':
        _rebuild_sqlite_plan(tier_id=None)
    else:
        op.drop_constraint(op.f('fk_plan_tier_id_tier'), 'plan', type_='foreignkey')
        op.drop_column('plan', 'tier_id')
    op.drop_index('uq_tier_default', table_name='tier')
    op.drop_table('tier')
