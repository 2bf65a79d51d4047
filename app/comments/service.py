"""Comment rules: post, reply, edit, delete, like, report, and staff moderation and bans."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.levels import AccessLevel
from app.accounts.models import User
from app.articles.models import Article
from app.comments import policy, rendering
from app.comments.errors import (
    CommentBanned,
    CommentNotFound,
    EditWindowClosed,
    ModerationNeedsAdmin,
    NotYourComment,
)
from app.comments.models import (
    Comment,
    CommentBan,
    CommentLike,
    CommentPreference,
    CommentReport,
    CommentStatus,
)
from app.comments.repository import comment_is_visible
from app.core.cache import invalidate_on_commit
from app.core.db import insert_ignoring_duplicates, pk, utcnow
from app.core.pagination import decode_cursor, encode_cursor

DELETED_TEXT = "[deleted]"
# Shown for an author with no display name (magic-link readers start without one); it says
# nothing about who they are, and never falls back to the email address.
NAMELESS = "Reader"


def author_name(display_name: str) -> str:
    """Give back the name a comment author is shown under."""
    return display_name.strip() or NAMELESS


async def active_ban(session: AsyncSession, user_id: int) -> CommentBan | None:
    now = utcnow()
    rows = await session.exec(
        select(CommentBan).where(
            CommentBan.user_id == user_id,
            col(CommentBan.lifted_at).is_(None),
            or_(col(CommentBan.until).is_(None), col(CommentBan.until) > now),
        )
    )
    return rows.first()


async def refuse_if_banned(session: AsyncSession, user: User) -> None:
    """Raise CommentBanned while the user has an active ban."""
    if await active_ban(session, pk(user.id)) is not None:
        raise CommentBanned("You are banned from commenting.")


async def post(
    session: AsyncSession,
    article: Article,
    author: User,
    level: AccessLevel,
    *,
    body: str,
    parent_id: int | None,
    max_depth: int,
) -> tuple[Comment, Comment | None]:
    """Add a comment or reply; give back (comment, the parent it answers)."""
    refusal = policy.refusal(article.comments, level, verified=author.email_verified)
    if refusal is not None:
        raise refusal
    await refuse_if_banned(session, author)
    parent = None
    depth = 0
    if parent_id is not None:
        parent = await session.get(Comment, parent_id)
        if (
            parent is None
            or parent.article_id != article.id
            or parent.status == CommentStatus.hidden.value
        ):
            raise CommentNotFound("No such comment to reply to.")
        # Deeper replies attach to the deepest allowed ancestor, so the thread stays readable.
        while parent.depth >= max_depth and parent.parent_id is not None:
            grand = await session.get(Comment, parent.parent_id)
            if grand is None:
                break
            parent = grand
        depth = min(parent.depth + 1, max_depth)
    comment = Comment(
        article_id=pk(article.id),
        author_id=author.id,
        parent_id=parent.id if parent else None,
        depth=depth,
        body=body,
        body_html=await rendering.to_html_off_loop(body),
    )
    session.add(comment)
    await session.flush()
    # The article's page shows its count of visible comments.
    invalidate_on_commit(session)
    return comment, parent


async def own_comment(session: AsyncSession, user: User, comment_id: int) -> Comment:
    """Give back the user's own visible comment; hidden ones are out of reach, as on reads."""
    # A hidden comment stays as the moderators left it: its author may neither erase nor
    # rewrite it, and answering 404 says no more than the thread itself does.
    comment = await session.get(Comment, comment_id)
    if comment is None or comment.status != CommentStatus.visible.value:
        raise CommentNotFound("No such comment.")
    if comment.author_id != user.id:
        raise NotYourComment("You can only change your own comments.")
    return comment


async def edit(
    session: AsyncSession, user: User, comment_id: int, body: str, window: timedelta
) -> Comment:
    """Change the text of the user's own comment within the edit window."""
    await refuse_if_banned(session, user)
    comment = await own_comment(session, user, comment_id)
    if utcnow() - comment.created_at > window:
        raise EditWindowClosed("Comments can be edited for a short while after posting.")
    comment.body = body
    comment.body_html = await rendering.to_html_off_loop(body)
    comment.edited_at = utcnow()
    session.add(comment)
    return comment


async def delete(session: AsyncSession, user: User, comment_id: int) -> None:
    """Erase the user's own comment; allowed under a ban, so words can always be taken back."""
    comment = await own_comment(session, user, comment_id)
    _mark_deleted(comment)
    session.add(comment)
    invalidate_on_commit(session)


def _mark_deleted(comment: Comment) -> None:
    comment.status = CommentStatus.deleted.value
    comment.body = ""
    comment.body_html = ""


async def visible_comment(session: AsyncSession, comment_id: int) -> Comment:
    comment = await session.get(Comment, comment_id)
    if comment is None or comment.status != CommentStatus.visible.value:
        raise CommentNotFound("No such comment.")
    return comment


async def like(session: AsyncSession, user: User, comment_id: int, *, on: bool) -> int:
    """Like or unlike (one like per reader); give back the comment's like count."""
    await refuse_if_banned(session, user)
    comment = await visible_comment(session, comment_id)
    if on:
        result = await session.exec(
            insert_ignoring_duplicates(CommentLike).values(
                comment_id=comment_id, user_id=user.id, created_at=utcnow()
            )
        )
        changed = result.rowcount
        delta = 1
    else:
        existing = await session.get(CommentLike, (comment_id, pk(user.id)))
        changed = 0
        if existing is not None:
            await session.delete(existing)
            changed = 1
        delta = -1
    if changed:
        await session.exec(
            update(Comment)
            .where(col(Comment.id) == comment_id)
            .values(like_count=Comment.like_count + delta)
        )
        await session.refresh(comment)
    return comment.like_count


async def report(session: AsyncSession, user: User, comment_id: int, reason: str) -> None:
    """Flag a visible comment for the moderators (once per reader)."""
    await refuse_if_banned(session, user)
    await visible_comment(session, comment_id)
    await session.exec(
        insert_ignoring_duplicates(CommentReport).values(
            comment_id=comment_id, reporter_id=user.id, reason=reason, created_at=utcnow()
        )
    )


@dataclass(frozen=True)
class ThreadPage:
    comments: list[Comment]
    replies: dict[int, list[Comment]]
    next_cursor: str | None


ORDERS = ("newest", "oldest", "top")


async def thread(
    session: AsyncSession,
    article_id: int,
    *,
    order: str,
    parent_id: int | None,
    limit: int,
    cursor: str | None,
    nested: bool,
    include_hidden: bool = False,
) -> ThreadPage:
    """One page of comments under `parent_id` (top level when None), with their replies."""
    query = select(Comment).where(Comment.article_id == article_id)
    query = (
        query.where(Comment.parent_id == parent_id)
        if parent_id is not None
        else query.where(col(Comment.parent_id).is_(None))
    )
    if not include_hidden:
        query = query.where(col(Comment.status) != CommentStatus.hidden.value)
    if cursor:
        if order == "top":
            likes, last = decode_cursor(cursor, (int, int))
            query = query.where(
                or_(
                    col(Comment.like_count) < likes,
                    (col(Comment.like_count) == likes) & (col(Comment.id) < last),
                )
            )
        else:
            (last,) = decode_cursor(cursor, (int,))
            query = query.where(
                col(Comment.id) > last if order == "oldest" else col(Comment.id) < last
            )
    if order == "top":
        query = query.order_by(col(Comment.like_count).desc(), col(Comment.id).desc())
    elif order == "oldest":
        query = query.order_by(col(Comment.id))
    else:
        query = query.order_by(col(Comment.id).desc())
    rows = list((await session.exec(query.limit(limit + 1))).all())
    more = len(rows) > limit
    rows = rows[:limit]
    replies: dict[int, list[Comment]] = {}
    if nested and rows:
        replies = await _descendants(session, article_id, [pk(c.id) for c in rows], include_hidden)
    rows = [c for c in rows if _shown(c, replies)]
    next_cursor = None
    if more and rows:
        last_row = rows[-1]
        next_cursor = (
            encode_cursor(last_row.like_count, last_row.id)
            if order == "top"
            else encode_cursor(last_row.id)
        )
    return ThreadPage(rows, replies, next_cursor)


def _shown(comment: Comment, replies: dict[int, list[Comment]]) -> bool:
    # A deleted comment stays as a "[deleted]" placeholder only while it holds replies.
    return comment.status != CommentStatus.deleted.value or bool(replies.get(pk(comment.id)))


async def _descendants(
    session: AsyncSession, article_id: int, roots: Sequence[int], include_hidden: bool
) -> dict[int, list[Comment]]:
    children: dict[int, list[Comment]] = {}
    frontier = list(roots)
    while frontier:
        query = select(Comment).where(
            Comment.article_id == article_id, col(Comment.parent_id).in_(frontier)
        )
        if not include_hidden:
            query = query.where(col(Comment.status) != CommentStatus.hidden.value)
        rows = (await session.exec(query.order_by(col(Comment.id)))).all()
        for row in rows:
            children.setdefault(pk(row.parent_id), []).append(row)
        frontier = [pk(r.id) for r in rows]

    # Drop deleted leaves bottom-up, so a placeholder remains only above living replies.
    def prune(node_id: int) -> bool:
        kept = [
            c
            for c in children.get(node_id, [])
            if prune(pk(c.id)) or c.status != CommentStatus.deleted.value
        ]
        children[node_id] = kept
        return bool(kept)

    for root in roots:
        prune(root)
    return children


async def counts(session: AsyncSession, article_ids: Sequence[int]) -> dict[int, int]:
    """Give back the number of visible comments per article."""
    if not article_ids:
        return {}
    rows = await session.exec(
        select(Comment.article_id, func.count())
        .where(col(Comment.article_id).in_(article_ids), comment_is_visible())
        .group_by(col(Comment.article_id))
    )
    return dict(rows.all())


async def authors(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """Give back the shown name of each author id."""
    if not ids:
        return {}
    rows = await session.exec(select(User.id, User.display_name).where(col(User.id).in_(list(ids))))
    return {pk(i): author_name(name) for i, name in rows}


def _check_rank(staff: User, target_role: str | None, what: str) -> None:
    if not policy.may_moderate(staff.role, target_role):
        raise ModerationNeedsAdmin(f"Only an admin can {what} an editor or an admin.")


async def set_status(
    session: AsyncSession, staff: User, comment_id: int, status: CommentStatus
) -> Comment:
    """Staff: hide, unhide or delete a comment; editors' and admins' comments need an admin."""
    comment = await session.get(Comment, comment_id)
    if comment is None:
        raise CommentNotFound("No such comment.")
    author = await session.get(User, comment.author_id) if comment.author_id is not None else None
    _check_rank(staff, author.role if author else None, "moderate the comments of")
    if status is CommentStatus.deleted:
        _mark_deleted(comment)
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
    bans = (
        await session.exec(
            select(CommentBan).where(
                CommentBan.user_id == member.id, col(CommentBan.lifted_at).is_(None)
            )
        )
    ).all()
    for entry in bans:
        entry.lifted_at = utcnow()
        session.add(entry)
    return len(bans)


async def wants_reply_emails(session: AsyncSession, user_id: int) -> bool:
    pref = await session.get(CommentPreference, user_id)
    return bool(pref and pref.reply_emails)


async def set_reply_emails(session: AsyncSession, user_id: int, on: bool) -> None:
    pref = await session.get(CommentPreference, user_id) or CommentPreference(user_id=user_id)
    pref.reply_emails = on
    session.add(pref)


async def anonymise_author(session: AsyncSession, user_id: int) -> None:
    """Detach a deleted account from its comments; the thread keeps the words."""
    await session.exec(
        update(Comment).where(col(Comment.author_id) == user_id).values(author_id=None)
    )
