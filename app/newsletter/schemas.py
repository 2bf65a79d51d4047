"""Request and response bodies of the newsletter API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.accounts.schemas import Email
from app.core.fields import Collapsed, Id, OneLine, Text, UtcDatetime
from app.newsletter.models import IssueStatus, Segment

Slug = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SubscribeIn(Strict):
    email: Email
    accept_terms: bool = False
    newsletters: list[Slug] | None = Field(default=None, max_length=20)
    source: OneLine = Field(default="", max_length=100)
    article_slug: OneLine | None = Field(default=None, max_length=200)


class ConfirmIn(Strict):
    token: str = Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")


class NewsletterIn(Strict):
    slug: Slug
    name: Collapsed = Field(min_length=1, max_length=200)
    description: Text = Field(default="", max_length=1000)
    sender_name: OneLine = Field(default="", max_length=200)
    sender_email: Email | None = None
    reply_to: Email | None = None
    default_for_signups: bool = True
    visibility: str = Field(default="public", pattern=r"^(public|members|paid)$")
    active: bool = True


class NewsletterOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    sender_name: str
    sender_email: str
    reply_to: str | None
    default_for_signups: bool
    visibility: str
    active: bool


class IssueIn(Strict):
    newsletter_id: Id
    subject: OneLine | None = Field(default=None, max_length=300)
    preheader: OneLine = Field(default="", max_length=300)
    article_id: Id | None = None
    body_md: Text = Field(default="", max_length=200_000)
    segment: Segment = Segment.all
    # The tiers of segment `tiers` (by slug): readers of any one of them get the issue.
    segment_tiers: list[Slug] = Field(default_factory=list, max_length=50)
    send_by: UtcDatetime | None = None


class ScheduleIn(Strict):
    scheduled_at: UtcDatetime


class TestSendIn(Strict):
    to: list[Email] = Field(min_length=1, max_length=10)
    as_paid: bool = True


class TierPreview(BaseModel):
    """The issue as a reader of one tier (and of no other) gets it."""

    tier: str
    name: str
    html: str
    text: str


class PreviewOut(BaseModel):
    """`paid_*`: a paying reader of no tier the article names; `free_*`: a free member;
    `tiers`: a reader of each tier in the catalogue."""

    subject: str
    paid_html: str
    paid_text: str
    free_html: str
    free_text: str
    tiers: list[TierPreview] = Field(default_factory=list)


class IssueOut(BaseModel):
    id: int
    newsletter_id: int
    subject: str
    preheader: str
    article_id: int | None
    segment: Segment
    segment_tiers: list[str]
    status: IssueStatus
    scheduled_at: datetime | None
    send_by: datetime | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    recipients: int
    note: str | None
    progress: dict[str, int]
