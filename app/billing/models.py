"""Billing tables: tiers and their plans (prices), customers, subscriptions and their history,
payments, grants, events."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, literal_column
from sqlmodel import Field, SQLModel

from app.core.db import utcnow
from app.core.types import UTCDateTime


class Interval(StrEnum):
    month = "month"
    year = "year"


class Tier(SQLModel, table=True):
    """What a reader can buy: a paid tier, sold through its plans (prices).

    The free tier is not a row: every member has it, and the access model already names it
    (`members` visibility, the `free` segment), so each later reference to a tier (a plan,
    a comp, an article's list, a segment) can only name something that is sold."""

    __tablename__ = "tier"
    __table_args__ = (
        # At most one default tier: the one plans created without a tier go into.
        Index(
            "uq_tier_default",
            "is_default",
            unique=True,
            sqlite_where=literal_column("is_default"),
            postgresql_where=literal_column("is_default"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120)
    slug: str = Field(max_length=100, unique=True)
    description: str = Field(default="", max_length=1000)
    benefits: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    visible: bool = Field(default=True, description="Shown on the public tiers page.")
    sort_order: int = 0
    active: bool = True
    is_default: bool = False
    stripe_product_id: str | None = Field(default=None, max_length=255, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Plan(SQLModel, table=True):
    """One price of a tier: interval, amount, currency, trial, and its Stripe price."""

    __tablename__ = "plan"

    id: int | None = Field(default=None, primary_key=True)
    tier_id: int = Field(foreign_key="tier.id", index=True)
    name: str = Field(max_length=120)
    description: str = Field(default="", max_length=1000)
    interval: str = Field(default=Interval.month.value, max_length=8)
    amount: int = Field(ge=0, description="In the currency's smallest unit (cents).")
    currency: str = Field(default="usd", max_length=3)
    trial_days: int = Field(default=0, ge=0, le=365)
    stripe_product_id: str | None = Field(default=None, max_length=255)
    stripe_price_id: str | None = Field(default=None, max_length=255, unique=True)
    active: bool = True
    sort_order: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class BillingCustomer(SQLModel, table=True):
    """The payment provider's customer for one reader, created once and reused."""

    __tablename__ = "billing_customer"

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    customer_id: str = Field(max_length=255, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Subscription(SQLModel, table=True):
    __tablename__ = "subscription"
    __table_args__ = (Index("ix_subscription_user_status", "user_id", "status"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", ondelete="CASCADE")
    provider: str = Field(default="stripe", max_length=16)
    provider_subscription_id: str = Field(max_length=255, unique=True)
    customer_id: str = Field(max_length=255, index=True)
    plan_id: int | None = Field(default=None, foreign_key="plan.id", ondelete="SET NULL")
    status: str = Field(max_length=32)
    cancel_at_period_end: bool = False
    current_period_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    trial_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    past_due_since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    canceled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    amount: int = 0
    currency: str = Field(default="usd", max_length=3)
    interval: str = Field(default=Interval.month.value, max_length=8)
    # A downgrade at period end: the higher plan the reader paid for and keeps until then.
    kept_plan_id: int | None = Field(default=None, foreign_key="plan.id", ondelete="SET NULL")
    kept_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The key of the last plan change asked for, so a repeated request changes nothing.
    change_key: str | None = Field(default=None, max_length=100)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class SubscriptionChange(SQLModel, table=True):
    """Append-only history of status and plan changes: what the staff numbers are computed
    from. The plan and tier ids are what they were, not links: history keeps its word."""

    __tablename__ = "subscription_change"

    id: int | None = Field(default=None, primary_key=True)
    subscription_id: int = Field(foreign_key="subscription.id", index=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    from_status: str | None = Field(default=None, max_length=32)
    to_status: str = Field(max_length=32)
    amount: int = 0
    currency: str = Field(default="usd", max_length=3)
    interval: str = Field(default=Interval.month.value, max_length=8)
    from_plan_id: int | None = None
    to_plan_id: int | None = None
    from_tier_id: int | None = None
    to_tier_id: int | None = None
    occurred_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    event_id: str | None = Field(default=None, max_length=255)


class Payment(SQLModel, table=True):
    """One paid invoice, recorded once however many events mention it."""

    __tablename__ = "payment"

    id: int | None = Field(default=None, primary_key=True)
    invoice_id: str = Field(max_length=255, unique=True)
    charge_id: str | None = Field(default=None, max_length=255, index=True)
    user_id: int | None = Field(
        default=None, foreign_key="user.id", index=True, ondelete="SET NULL"
    )
    subscription_id: str | None = Field(default=None, max_length=255)
    amount: int = 0
    currency: str = Field(default="usd", max_length=3)
    paid_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    refunded_amount: int = 0
    disputed: bool = False


class CompGrant(SQLModel, table=True):
    """Complimentary access granted by an admin, optionally until a date: to one tier, or to
    every tier when `tier_id` is NULL (what a comp meant before tiers existed)."""

    __tablename__ = "comp_grant"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    # RESTRICT, not SET NULL: a NULL tier means every tier, so a tier's deletion must never
    # widen its comps into full access. Tiers are archived, not deleted.
    tier_id: int | None = Field(default=None, foreign_key="tier.id", ondelete="RESTRICT")
    granted_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    reason: str = Field(default="", max_length=500)
    starts_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    ends_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CheckoutRecord(SQLModel, table=True):
    """A checkout started by a reader: for attribution and for one session per double click."""

    __tablename__ = "checkout_record"
    __table_args__ = (UniqueConstraint("idempotency_key"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    plan_id: int = Field(foreign_key="plan.id", ondelete="CASCADE")
    idempotency_key: str = Field(max_length=255)
    session_id: str | None = Field(default=None, max_length=255, index=True)
    url: str | None = Field(default=None, max_length=2000)
    article_slug: str | None = Field(default=None, max_length=200, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    completed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EventStatus(StrEnum):
    received = "received"
    processed = "processed"
    ignored = "ignored"
    unmatched = "unmatched"
    failed = "failed"


class StripeEvent(SQLModel, table=True):
    """Every verified webhook event, stored before it is applied."""

    __tablename__ = "stripe_event"

    id: int | None = Field(default=None, primary_key=True)
    event_id: str = Field(max_length=255, unique=True)
    type: str = Field(max_length=100, index=True)
    created: int = Field(description="Stripe's creation time (unix seconds).")
    payload: str = Field(sa_column=Column(Text, nullable=False))
    customer_id: str | None = Field(default=None, max_length=255, index=True)
    status: str = Field(default=EventStatus.received.value, max_length=16, index=True)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    claimed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    processed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=2000)


class BillingNotice(SQLModel, table=True):
    """An email sent about billing, keyed so the same notice is never sent twice."""

    __tablename__ = "billing_notice"

    key: str = Field(max_length=255, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    sent_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
