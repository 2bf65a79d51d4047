"""Request and response bodies of the comments API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.fields import Id, OneLine, Text, UtcDatetime

MAX_BODY = 10_000


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CommentIn(Strict):
    body: Text = Field(min_length=1, max_length=MAX_BODY)
    parent_id: Id | None = None

    @field_validator("body")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the comment is empty")
        return value.strip()


class CommentEdit(Strict):
    body: Text = Field(min_length=1, max_length=MAX_BODY)


class ReportIn(Strict):
    reason: Text = Field(min_length=1, max_length=500)


class BanIn(Strict):
    until: UtcDatetime | None = None
    reason: OneLine = Field(default="", max_length=500)


class CommentOut(BaseModel):
    id: int
    parent_id: int | None
    author: dict[str, object] | None
    body_html: str = Field(description="Sanitised; '[deleted]' placeholders have empty HTML.")
    deleted: bool
    status: str
    likes: int
    created_at: datetime
    edited_at: datetime | None
    replies: list[CommentOut] = Field(default_factory=list)


class LikesOut(BaseModel):
    likes: int


class AdminCommentOut(BaseModel):
    id: int
    article_id: int
    author_id: int | None
    parent_id: int | None
    body: str
    status: str
    likes: int
    reports: int
    created_at: datetime
