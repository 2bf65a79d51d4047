"""Article tables: articles, their authors and tags, revisions and old-slug redirects."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, LargeBinary, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# The access model owns what an article requires; the name stays importable from here.
from app.access.rules import Visibility as Visibility
from app.core.db import utcnow
from app.core.types import UTCDateTime


class Status(StrEnum):
    draft = "draft"
    scheduled = "scheduled"
    published = "published"
    archived = "archived"


class CommentSetting(StrEnum):
    everyone = "everyone"
    members = "members"
    paid = "paid"
    off = "off"


class Article(SQLModel, table=True):
    __tablename__ = "article"
    # The archive is read newest first by (published_at, id): one index serves every page.
    __table_args__ = (
        Index("ix_article_status_published", "status", "published_at", "id"),
        # Covers the article page's look-up and live check, so the read never touches the
        # article's own row (on SQLite, whose big text columns come before the small ones).
        Index("ix_article_reader", "slug", "status", "published_at", "visibility"),
        # Newest first without a sort of every live article: "live" is two statuses, so
        # PostgreSQL cannot walk the status index in (published_at, id) order.
        Index("ix_article_newest", "published_at", "id"),
        # The live state by id (search hits' cards), without the row: SQLite reads the
        # status of a row from behind its long text columns.
        Index("ix_article_live_by_id", "id", "status", "published_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=200, unique=True)
    title: str = Field(max_length=300)
    subtitle: str = Field(default="", max_length=500)
    body_md: str = Field(default="", sa_column=Column(Text, nullable=False))
    # Rendered once at write time, so reads never render Markdown.
    content_html: str = Field(default="", sa_column=Column(Text, nullable=False))
    # The free part (before the paywall marker, or the first N paragraphs), rendered.
    preview_html: str = Field(default="", sa_column=Column(Text, nullable=False))
    excerpt_override: str | None = Field(default=None, max_length=1000)
    # Plain-text teaser, from the override or the free part only: lists, search, SEO.
    excerpt: str = Field(default="", max_length=1000)
    has_paywall_marker: bool = False
    preview_paragraphs: int | None = Field(default=None, ge=1, le=50)
    visibility: str = Field(default=Visibility.public.value, max_length=16)
    # Time rules (access/rules.py): an embargo, a free window while breaking, an automatic
    # paywall by age (its own days, or the publication's for a public article following it).
    free_after: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    free_until: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    gated_after_days: int | None = Field(default=None, ge=1, le=3650)
    auto_paywall: bool = True
    # When the automatic paywall closes, worked out at write time from the above.
    gated_at: datetime | None = Field(default=None, sa_type=UTCDateTime, index=True)
    status: str = Field(default=Status.draft.value, max_length=16)
    published_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    version: int = 1
    cover_image_url: str | None = Field(default=None, max_length=2000)
    cover_image_alt: str = Field(default="", max_length=500)
    seo_title: str | None = Field(default=None, max_length=300)
    seo_description: str | None = Field(default=None, max_length=500)
    comments: str = Field(default=CommentSetting.everyone.value, max_length=16)
    word_count: int = 0
    reading_minutes: int = 0
    created_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")


class ArticleAuthor(SQLModel, table=True):
    __tablename__ = "article_author"

    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True, ondelete="CASCADE")
    position: int = 0


class ArticleTier(SQLModel, table=True):
    """The tiers a `tiers` article is for (any one of them unlocks it)."""

    __tablename__ = "article_tier"

    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")
    tier_id: int = Field(foreign_key="tier.id", primary_key=True, index=True, ondelete="RESTRICT")


class Tag(SQLModel, table=True):
    __tablename__ = "tag"

    id: int | None = Field(default=None, primary_key=True)
    slug: str = Field(max_length=100, unique=True)
    name: str = Field(max_length=100)


class ArticleTag(SQLModel, table=True):
    __tablename__ = "article_tag"

    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")
    tag_id: int = Field(foreign_key="tag.id", primary_key=True, index=True, ondelete="CASCADE")


class ArticleRevision(SQLModel, table=True):
    """A snapshot of an article's editable content after a change: who, when, what."""

    __tablename__ = "article_revision"
    __table_args__ = (UniqueConstraint("article_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True, ondelete="CASCADE")
    version: int
    editor_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    title: str = Field(max_length=300)
    subtitle: str = Field(default="", max_length=500)
    body_md: str = Field(default="", sa_column=Column(Text, nullable=False))
    excerpt_override: str | None = Field(default=None, max_length=1000)


class SlugRedirect(SQLModel, table=True):
    __tablename__ = "slug_redirect"

    old_slug: str = Field(max_length=200, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True, ondelete="CASCADE")


class ArticlePage(SQLModel, table=True):
    """The article as rendered when it was written: its archive card, the members of its page's
    JSON answer that are the same for every reader, and the full text as a JSON string. A
    read joins these bytes with the reader's part (access, paywall, comment count)."""

    __tablename__ = "article_page"

    article_id: int = Field(foreign_key="article.id", primary_key=True, ondelete="CASCADE")
    # The archive card, first: on SQLite a column is reached by walking the ones before it.
    teaser: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    head: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    content: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The page format and the publication's URL it was rendered with: a row rendered with
    # others is rendered again when a process starts (page_parts.refresh_stale).
    format: int
    public_url: str = Field(max_length=500)
    # The schema.org data without its access members, which follow the time rules: a JSON
    # object's members, joined at read time with those the moment gives.
    structured: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The article's requirement (access/rules.py) as JSON, read with the page.
    rules: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    # The publication's automatic-paywall days it was rendered with (stale when they change).
    paywall_days: int | None = None
