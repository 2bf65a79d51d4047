"""Every statement the comments domain runs; other domains embed the exported rules.

"Visible comment" is defined here once, for raw SQL (`VISIBLE_COMMENT_SQL`) and for the ORM
(`comment_is_visible()`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from sqlmodel.sql.expression import SelectOfScalar

from app.comments.models import (
    Comment,
    CommentBan,
    CommentLike,
    CommentPreference,
    CommentReport,
    CommentStatus,
)
from app.core.db import insert_ignoring_duplicates, pk, utcnow
from app.core.pagination import decode_cursor, newest_first

# "Visible comment", for raw SQL over a `comment c` (the article page's one-statement read).
VISIBLE_COMMENT_SQL = f"c.status = '{CommentStatus.visible.value}'"


def visible_count_sql(article_id: str) -> str:
    """Raw SQL: the visible comments on the article whose id is the SQL `article_id`."""
    return (
        "(SELECT count(*) FROM comment c"  # noqa: S608 - SQL pieces only; values are parameters
        f" WHERE c.article_id = {article_id} AND {VISIBLE_COMMENT_SQL})"
    )


def comment_is_visible() -> ColumnElement[bool]:
    """ "Visible comment" for ORM queries: the same rule as VISIBLE_COMMENT_SQL."""
    return col(Comment.status) == CommentStatus.visible.value


def _not_hidden() -> ColumnElement[bool]:
    return col(Comment.status) != CommentStatus.hidden.value


async def count_by_author(session: AsyncSession, user_id: int) -> int:
    """How many comments this account wrote, whatever their status."""
    query = select(func.count()).select_from(Comment).where(Comment.author_id == user_id)
    return int((await session.exec(query)).one())


async def get(session: AsyncSession, comment_id: int) -> Comment | None:
    """The comment with this id, whatever its status."""
    return await session.get(Comment, comment_id)


async def visible_counts(session: AsyncSession, article_ids: Sequence[int]) -> dict[int, int]:
    """The number of visible comments per article."""
    rows = await session.exec(
        select(Comment.article_id, func.count())
        .where(col(Comment.article_id).in_(article_ids), comment_is_visible())
        .group_by(col(Comment.article_id))
    )
    return dict(rows.all())


def _after_cursor(query: SelectOfScalar[Comment], order: str, cursor: str) -> Any:
    if order == "top":
        likes, last = decode_cursor(cursor, (int, int))
        return query.where(
            or_(
                col(Comment.like_count) < likes,
                (col(Comment.like_count) == likes) & (col(Comment.id) < last),
            )
        )
    (last,) = decode_cursor(cursor, (int,))
    return query.where(col(Comment.id) > last if order == "oldest" else col(Comment.id) < last)


def _ordered(query: SelectOfScalar[Comment], order: str) -> SelectOfScalar[Comment]:
    if order == "top":
        return query.order_by(col(Comment.like_count).desc(), col(Comment.id).desc())
    if order == "oldest":
        return query.order_by(col(Comment.id))
    return query.order_by(col(Comment.id).desc())


async def thread_rows(
    session: AsyncSession,
    article_id: int,
    *,
    parent_id: int | None,
    order: str,
    cursor: str | None,
    limit: int,
    include_hidden: bool,
) -> list[Comment]:
    """Up to `limit` comments directly under `parent_id` (top level when None), in `order`."""
    query = select(Comment).where(Comment.article_id == article_id)
    query = (
        query.where(Comment.parent_id == parent_id)
        if parent_id is not None
        else query.where(col(Comment.parent_id).is_(None))
    )
    if not include_hidden:
        query = query.where(_not_hidden())
    if cursor:
        query = _after_cursor(query, order, cursor)
    return list((await session.exec(_ordered(query, order).limit(limit))).all())


async def children_of(
    session: AsyncSession, article_id: int, parent_ids: Sequence[int], include_hidden: bool
) -> Sequence[Comment]:
    """The direct replies to these comments, oldest first."""
    query = select(Comment).where(
        Comment.article_id == article_id, col(Comment.parent_id).in_(parent_ids)
    )
    if not include_hidden:
        query = query.where(_not_hidden())
    return (await session.exec(query.order_by(col(Comment.id)))).all()


async def active_ban(session: AsyncSession, user_id: int) -> CommentBan | None:
    """The member's ban in force now, if any."""
    rows = await session.exec(
        select(CommentBan).where(
            CommentBan.user_id == user_id,
            col(CommentBan.lifted_at).is_(None),
            or_(col(CommentBan.until).is_(None), col(CommentBan.until) > utcnow()),
        )
    )
    return rows.first()


async def unlifted_bans(session: AsyncSession, user_id: int) -> Sequence[CommentBan]:
    """The member's bans not lifted yet, expired ones included."""
    query = select(CommentBan).where(
        CommentBan.user_id == user_id, col(CommentBan.lifted_at).is_(None)
    )
    return (await session.exec(query)).all()


async def add_like(session: AsyncSession, comment_id: int, user_id: int) -> int:
    """Record the like unless it exists; give back how many rows were added."""
    result = await session.exec(
        insert_ignoring_duplicates(CommentLike).values(
            comment_id=comment_id, user_id=user_id, created_at=utcnow()
        )
    )
    return int(result.rowcount)


async def remove_like(session: AsyncSession, comment_id: int, user_id: int) -> int:
    """Take the like away if it exists; give back how many rows were removed."""
    existing = await session.get(CommentLike, (comment_id, user_id))
    if existing is None:
        return 0
    await session.delete(existing)
    return 1


async def shift_like_count(session: AsyncSession, comment: Comment, delta: int) -> None:
    """Move the stored like count by `delta` in the database, then reload the comment."""
    await session.exec(
        update(Comment)
        .where(col(Comment.id) == pk(comment.id))
        .values(like_count=Comment.like_count + delta)
    )
    await session.refresh(comment)


async def add_report(session: AsyncSession, comment_id: int, user_id: int, reason: str) -> None:
    """Record the report unless this reader already reported the comment."""
    await session.exec(
        insert_ignoring_duplicates(CommentReport).values(
            comment_id=comment_id, reporter_id=user_id, reason=reason, created_at=utcnow()
        )
    )


async def preference(session: AsyncSession, user_id: int) -> CommentPreference | None:
    """The member's comment preferences, if they set any."""
    return await session.get(CommentPreference, user_id)


async def detach_author(session: AsyncSession, user_id: int) -> None:
    """Clear the author of every comment this account wrote."""
    await session.exec(
        update(Comment).where(col(Comment.author_id) == user_id).values(author_id=None)
    )


@dataclass(frozen=True)
class ModerationFilters:
    status: CommentStatus | None = None
    reported: bool | None = None
    article_id: int | None = None
    user_id: int | None = None


async def moderation_page(
    session: AsyncSession, filters: ModerationFilters, *, limit: int, cursor: str | None
) -> tuple[list[tuple[Comment, int]], str | None]:
    """One page of (comment, open reports), hidden and deleted included, newest first."""
    reports = (
        select(func.count())
        .where(
            col(CommentReport.comment_id) == Comment.id, col(CommentReport.resolved_at).is_(None)
        )
        .scalar_subquery()
    )
    query = select(Comment, reports)
    if filters.status is not None:
        query = query.where(Comment.status == filters.status.value)
    if filters.reported is not None:
        query = query.where(reports > 0 if filters.reported else reports == 0)
    if filters.article_id is not None:
        query = query.where(Comment.article_id == filters.article_id)
    if filters.user_id is not None:
        query = query.where(Comment.author_id == filters.user_id)
    return await newest_first(
        session, query, col(Comment.id), limit=limit, cursor=cursor, key=lambda row: pk(row[0].id)
    )


async def authored_by(session: AsyncSession, user_id: int) -> Sequence[Comment]:
    """Every comment the account wrote, whatever its status, in storage order."""
    return (await session.exec(select(Comment).where(Comment.author_id == user_id))).all()


async def likes_by(session: AsyncSession, user_id: int) -> Sequence[CommentLike]:
    """Every like the account gave."""
    return (await session.exec(select(CommentLike).where(CommentLike.user_id == user_id))).all()


async def reports_by(session: AsyncSession, user_id: int) -> Sequence[CommentReport]:
    """Every report the account filed."""
    query = select(CommentReport).where(CommentReport.reporter_id == user_id)
    return (await session.exec(query)).all()
