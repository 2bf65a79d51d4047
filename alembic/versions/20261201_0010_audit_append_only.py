"""audit_entry append-only: triggers refuse UPDATE and DELETE; actors cannot be deleted

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FK = 'fk_audit_entry_actor_id_user'

# The retention purge (app/admin/audit_retention.py) lifts these for one transaction: on
# SQLite it re-creates them from the SQL stored in sqlite_master, on PostgreSQL it disables
# and re-enables the table's user triggers, so this file stays their one definition.
SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_entry_no_update BEFORE UPDATE ON audit_entry"
    " BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: UPDATE refused'); END",
    "CREATE TRIGGER audit_entry_no_delete BEFORE DELETE ON audit_entry"
    " BEGIN SELECT RAISE(ABORT, 'audit_entry is append-only: DELETE refused'); END",
)
POSTGRES_TRIGGERS = (
    "CREATE FUNCTION audit_entry_append_only() RETURNS trigger LANGUAGE plpgsql AS $$"
    " BEGIN RAISE EXCEPTION 'audit_entry is append-only: % refused', TG_OP"
    " USING HINT = 'Old entries go with broadsheet audit purge --before DATE.'; END $$",
    "CREATE TRIGGER audit_entry_no_change BEFORE UPDATE OR DELETE ON audit_entry"
    " FOR EACH ROW EXECUTE FUNCTION audit_entry_append_only()",
    # TRUNCATE skips row triggers; a statement trigger refuses it too.
    "CREATE TRIGGER audit_entry_no_truncate BEFORE TRUNCATE ON audit_entry"
    " FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_append_only()",
)


def _actor_fk(ondelete: str | None) -> None:
    # ON DELETE SET NULL would be an UPDATE of the log, which the triggers refuse: an account
    # with entries is anonymised, never deleted, and the schema now says so (NO ACTION: the
    # delete fails as a plain foreign-key violation).
    with op.batch_alter_table('audit_entry', schema=None) as batch_op:
        batch_op.drop_constraint(FK, type_='foreignkey')
        batch_op.create_foreign_key(FK, 'user', ['actor_id'], ['id'], ondelete=ondelete)


def upgrade() -> None:
    _actor_fk(None)
    sqlite = op.get_bind().dialect.name == 'sqlite'
    for statement in SQLITE_TRIGGERS if sqlite else POSTGRES_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == 'sqlite':
        op.execute('DROP TRIGGER audit_entry_no_update')
        op.execute('DROP TRIGGER audit_entry_no_delete')
    else:
        op.execute('DROP TRIGGER audit_entry_no_truncate ON audit_entry')
        op.execute('DROP TRIGGER audit_entry_no_change ON audit_entry')
        op.execute('DROP FUNCTION audit_entry_append_only()')
    _actor_fk('SET NULL')
