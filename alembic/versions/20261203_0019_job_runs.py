"""job runs: when each periodic job last finished, shared by every worker process

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 11:15:00

`job_run` (name, finished_at) holds one row per job that limits how often it runs across
processes: the SQLite search index merge, which rewrites the whole index, kept its last
time in each process, so every process running the worker merged on its own.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.core.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "job_run",
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("finished_at", app.core.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_job_run")),
    )


def downgrade() -> None:
    op.drop_table("job_run")
