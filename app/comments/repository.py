"""The comments domain's statements and rules as SQL; other domains embed the exported ones."""

from __future__ import annotations

from sqlalchemy import ColumnElement
from sqlmodel import col

from app.comments.models import Comment, CommentStatus

# "Visible comment", for raw SQL over a `comment c` (the article page's one-statement read).
VISIBLE_COMMENT_SQL = f"c.status = '{CommentStatus.visible.value}'"


def comment_is_visible() -> ColumnElement[bool]:
    """ "Visible comment" for ORM queries: the same rule as VISIBLE_COMMENT_SQL."""
    return col(Comment.status) == CommentStatus.visible.value
