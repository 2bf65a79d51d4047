"""Newsletter tables: lists, subscribers and their choices, issues, and per-recipient deliveries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import utcnow
from app.core.types import UTCDateTime


class SubscriberStatus(StrEnum):
    pending = "pending"
    active = "active"
    unsubscribed = "unsubscribed"
    bounced = "bounced"


class Segment(StrEnum):
    all = "all"
    free = "free"
    paid = "paid"
    tiers = "tiers"


class IssueStatus(StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    sending = "sending"
    paused = "paused"
    sent = "sent"
    canceled = "canceled"
    expired = "expired"


class DeliveryStatus(StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"
    unknown = "unknown"


class Newsletter(SQLModel, table=True):
    __tablename__ = "newsletter"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=100, unique=True)
    name: str = Field(max_length=200)
    description: str = Field(default="", max_length=1000)
    sender_name: str = Field(default="", max_length=200)
    sender_email: str = Field(default="", max_length=320)
    reply_to: str | None = Field(default=None, max_length=320)
    default_for_signups: bool = True
    # Who may subscribe: public (anyone by email), members (accounts), paid.
    visibility: str = Field(default="public", max_length=16)
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class Subscriber(SQLModel, table=True):
    """An email address that may receive newsletters: a member's or an email-only reader's."""

    __tablename__ = "subscriber"

    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(max_length=320, unique=True)
    user_id: int | None = Field(
        default=None, foreign_key="user.id", unique=True, ondelete="SET NULL"
    )
    status: str = Field(default=SubscriberStatus.pending.value, max_length=16, index=True)
    source: str = Field(default="", max_length=100)
    article_slug: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    confirmed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    bounced_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    bounce_reason: str | None = Field(default=None, max_length=500)


class NewsletterSubscription(SQLModel, table=True):
    __tablename__ = "newsletter_subscription"

    subscriber_id: int = Field(foreign_key="subscriber.id", primary_key=True, ondelete="CASCADE")
    newsletter_id: int = Field(foreign_key="newsletter.id", primary_key=True, ondelete="CASCADE")
    active: bool = True
    subscribed_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    unsubscribed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # The issue whose unsubscribe link was used, for the "unsubscribes caused" numbers.
    unsubscribed_from_issue_id: int | None = None


class NewsletterIssue(SQLModel, table=True):
    __tablename__ = "newsletter_issue"

    id: int | None = Field(default=None, primary_key=True)
    newsletter_id: int = Field(foreign_key="newsletter.id", index=True, ondelete="CASCADE")
    subject: str = Field(max_length=300)
    preheader: str = Field(default="", max_length=300)
    article_id: int | None = Field(default=None, foreign_key="article.id", ondelete="SET NULL")
    body_md: str = Field(default="", sa_column=Column(Text, nullable=False))
    segment: str = Field(default=Segment.all.value, max_length=8)
    status: str = Field(default=IssueStatus.draft.value, max_length=16, index=True)
    scheduled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    send_by: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    started_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recipients: int = 0
    note: str | None = Field(default=None, max_length=500)


class IssueTier(SQLModel, table=True):
    """The tiers an issue of segment `tiers` goes to (a reader of any one of them gets it)."""

    __tablename__ = "newsletter_issue_tier"

    issue_id: int = Field(foreign_key="newsletter_issue.id", primary_key=True, ondelete="CASCADE")
    tier_id: int = Field(foreign_key="tier.id", primary_key=True, index=True, ondelete="RESTRICT")


class Delivery(SQLModel, table=True):
    """One recipient of one issue: snapshotted at send time, sent at most once."""

    __tablename__ = "delivery"
    __table_args__ = (
        UniqueConstraint("issue_id", "email"),
        Index("ix_delivery_claim", "status", "next_attempt_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    issue_id: int = Field(foreign_key="newsletter_issue.id", index=True, ondelete="CASCADE")
    subscriber_id: int = Field(foreign_key="subscriber.id", index=True, ondelete="CASCADE")
    email: str = Field(max_length=320)
    paid: bool = False
    member: bool = False
    # The recipient's tiers when the snapshot was taken: "*" every tier, else tier ids
    # comma-separated, "" none (billing.repository.recipient_tiers.tier_list).
    tiers: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    status: str = Field(default=DeliveryStatus.pending.value, max_length=16)
    attempts: int = 0
    # A send whose outcome is unknown (connection lost after the data) is retried once only.
    unknown_retried: bool = False
    next_attempt_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    lease_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    worker: str | None = Field(default=None, max_length=64)
    message_id: str = Field(default="", max_length=255)
    last_reply: str | None = Field(default=None, max_length=500)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
