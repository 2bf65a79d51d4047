"""Staff moderation of comments: the moderation list, hide, unhide, delete, bans."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.accounts import service as account_rules
from app.accounts.models import User
from app.comments import policy
from app.comments import repository as repo
from app.comments.errors import CommentNotFound, ModerationNeedsAdmin
from app.comments.models import Comment, CommentBan, CommentStatus
from app.comments.repository import ModerationFilters
from app.comments.schemas import AdminCommentOut
from app.comments.service import mark_deleted
from app.core.cache import invalidate_on_commit
from app.core.db import pk, utcnow
from app.core.errors import NotFound
from app.core.pagination import Page

__all__ = ["ModerationFilters"]


async def moderation_list(
    session: AsyncSession, filters: ModerationFilters, *, limit: int, cursor: str | None
) -> Page[AdminCommentOut]:
    """Every comment matching the filters, hidden and deleted included, newest first."""
    rows, next_cursor = await repo.moderation_page(session, filters, limit=limit, cursor=cursor)
    items = [
        AdminCommentOut(
            id=pk(c.id),
            article_id=c.article_id,
            author_id=c.author_id,
            parent_id=c.parent_id,
            body=c.body,
            status=c.status,
            likes=c.like_count,
            reports=n,
            created_at=c.created_at,
        )
        for c, n in rows
    ]
    return Page[AdminCommentOut](items=items, next_cursor=next_cursor)


def _check_rank(staff: User, target_role: str | None, what: str) -> None:
    if not policy.may_moderate(staff.role, target_role):
        raise ModerationNeedsAdmin(f"Only an admin can {what} an editor or an admin.")


async def set_status(
    session: AsyncSession, staff: User, comment_id: int, status: CommentStatus
) -> Comment:
    """Staff: hide, unhide or delete a comment; editors' and admins' comments need an admin."""
    comment = await repo.get(session, comment_id)
    if comment is None:
        raise CommentNotFound("No such comment.")
    author = (
        await accounts.get_user(session, comment.author_id)
        if comment.author_id is not None
        else None
    )
    _check_rank(staff, author.role if author else None, "moderate the comments of")
    if status is CommentStatus.deleted:
        mark_deleted(comment)
    else:
        comment.status = status.value
    session.add(comment)
    invalidate_on_commit(session)
    return comment


async def ban(
    session: AsyncSession, staff: User, member: User, *, until: datetime | None, reason: str
) -> CommentBan:
    """Ban a member from commenting; banning an editor or an admin needs an admin."""
    _check_rank(staff, member.role, "ban")
    entry = CommentBan(user_id=pk(member.id), banned_by_id=staff.id, until=until, reason=reason)
    session.add(entry)
    await session.flush()
    return entry


async def lift_bans(session: AsyncSession, staff: User, member: User) -> int:
    """Lift a member's bans; give back how many there were. Staff bans are an admin's to lift."""
    _check_rank(staff, member.role, "lift the ban of")
    bans = await repo.unlifted_bans(session, pk(member.id))
    for entry in bans:
        entry.lifted_at = utcnow()
        session.add(entry)
    return len(bans)


async def ban_member(
    session: AsyncSession,
    staff: User,
    member_id: int,
    *,
    until: datetime | None,
    reason: str,
) -> dict[str, object]:
    """Ban a live member from commenting; give back the ban as staff see it."""
    member = await account_rules.live_member(session, member_id)
    entry = await ban(session, staff, member, until=until, reason=reason)
    return {"id": entry.id, "user_id": entry.user_id, "until": entry.until, "reason": entry.reason}


async def unban_member(session: AsyncSession, staff: User, member_id: int) -> None:
    """Lift a live member's bans (NotFound when there are none)."""
    member = await account_rules.live_member(session, member_id)
    if not await lift_bans(session, staff, member):
        raise NotFound("The member is not banned.", code="ban_not_found")
