"""Staff-console tables: the audit log and member labels."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from app.core.db import utcnow
from app.core.types import UTCDateTime


class AuditEntry(SQLModel, table=True):
    """One staff write: who, what, when, and the changed fields before and after."""

    __tablename__ = "audit_entry"
    __table_args__ = (Index("ix_audit_entity", "entity", "entity_id"),)

    id: int | None = Field(default=None, primary_key=True)
    # No ON DELETE action (SET NULL would be an UPDATE of the log, which its triggers refuse):
    # an account with entries cannot be deleted, and none needs to be (they are anonymised).
    actor_id: int | None = Field(default=None, foreign_key="user.id", index=True)
    action: str = Field(max_length=16)
    entity: str = Field(max_length=64)
    entity_id: str = Field(max_length=64)
    before: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    request_id: str | None = Field(default=None, max_length=128)
    created_at: datetime = Field(
        default_factory=utcnow, sa_type=UTCDateTime, nullable=False, index=True
    )


class MemberLabel(SQLModel, table=True):
    __tablename__ = "member_label"

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    label: str = Field(max_length=100, primary_key=True, index=True)
