"""Request and response bodies of the staff console."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from app.accounts.models import Role
from app.core.fields import Collapsed


class MemberComp(BaseModel):
    """A running complimentary grant: to one tier (its slug), or to every tier (None)."""

    id: int
    tier: str | None
    starts_at: datetime
    ends_at: datetime | None
    reason: str


class MemberOut(BaseModel):
    id: int
    email: str
    display_name: str
    role: str
    email_verified: bool
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    labels: list[str]
    # The tiers the member has now (slugs, in display order): from entitling subscriptions'
    # plans and running comps (a comp without a tier gives every tier).
    tiers: list[str]
    comps: list[MemberComp]


class MemberDetail(MemberOut):
    access_level: str
    subscriptions: list[dict[str, Any]]
    subscription_history: list[dict[str, Any]]
    billing_events: list[dict[str, Any]]
    consents: list[dict[str, Any]]
    newsletters: list[str]
    comment_count: int


class MemberPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    disabled: bool | None = None
    labels: list[Annotated[Collapsed, Field(max_length=100)]] | None = Field(
        default=None, max_length=50
    )


class AuditOut(BaseModel):
    id: int
    actor_id: int | None
    action: str
    entity: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    created_at: datetime


class ImportOut(BaseModel):
    dry_run: bool
    rows: int
    created: int
    updated: int
    unchanged: int
    # Complimentary grants the import gave (or, in a dry run, would give).
    comped: int
    errors: list[dict[str, Any]]
