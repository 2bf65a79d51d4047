"""Comment tables: threaded comments, likes, reports, bans and reply-email preferences."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from app.core.db import utcnow
from app.core.types import UTCDateTime


class CommentStatus(StrEnum):
    visible = "visible"
    hidden = "hidden"
    deleted = "deleted"


class Comment(SQLModel, table=True):
    __tablename__ = "comment"
    __table_args__ = (Index("ix_comment_thread", "article_id", "parent_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", ondelete="CASCADE")
    # Null once the author deleted their account: the thread keeps the words, not the person.
    author_id: int | None = Field(
        default=None, foreign_key="user.id", index=True, ondelete="SET NULL"
    )
    parent_id: int | None = Field(default=None, foreign_key="comment.id", ondelete="CASCADE")
    depth: int = 0
    body: str = Field(sa_column=Column(Text, nullable=False))
    body_html: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default=CommentStatus.visible.value, max_length=16, index=True)
    # A cache of the like rows, for ordering by "top"; the like rows are the truth.
    like_count: int = 0
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    edited_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CommentLike(SQLModel, table=True):
    __tablename__ = "comment_like"

    comment_id: int = Field(foreign_key="comment.id", primary_key=True, ondelete="CASCADE")
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True, ondelete="CASCADE")
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)


class CommentReport(SQLModel, table=True):
    __tablename__ = "comment_report"
    __table_args__ = (UniqueConstraint("comment_id", "reporter_id"),)

    id: int | None = Field(default=None, primary_key=True)
    comment_id: int = Field(foreign_key="comment.id", index=True, ondelete="CASCADE")
    reporter_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    reason: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    resolved_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CommentBan(SQLModel, table=True):
    __tablename__ = "comment_ban"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    banned_by_id: int | None = Field(default=None, foreign_key="user.id", ondelete="SET NULL")
    reason: str = Field(default="", max_length=500)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    lifted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class CommentPreference(SQLModel, table=True):
    __tablename__ = "comment_preference"

    user_id: int = Field(foreign_key="user.id", primary_key=True, ondelete="CASCADE")
    reply_emails: bool = False
