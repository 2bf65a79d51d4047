"""Comment rules for readers: post, reply, edit, delete, like, report, reply emails."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.entitlements import AccessLevel
from app.accounts import repository as accounts
from app.accounts.models import User
from app.articles.models import Article
from app.billing.repository import user_reader_level
from app.comments import markup, policy, reply_mail
from app.comments import repository as repo
from app.comments.errors import (
    CommentBanned,
    CommentNotFound,
    EditWindowClosed,
    NotYourComment,
)
from app.comments.models import (
    Comment,
    CommentBan,
    CommentPreference,
    CommentStatus,
)
from app.comments.schemas import CommentOut
from app.comments.threads import author_name, comment_out, live_article
from app.core import mail_outbox
from app.core.cache import invalidate_on_commit
from app.core.config import Settings
from app.core.db import pk, utcnow
from app.core.errors import InvalidInput


async def active_ban(session: AsyncSession, user_id: int) -> CommentBan | None:
    """Give back the member's ban in force now, if any."""
    return await repo.active_ban(session, user_id)


async def refuse_if_banned(session: AsyncSession, user: User) -> None:
    """Raise CommentBanned while the user has an active ban."""
    if await active_ban(session, pk(user.id)) is not None:
        raise CommentBanned("You are banned from commenting.")


async def _reply_target(
    session: AsyncSession, article: Article, parent_id: int | None, max_depth: int
) -> tuple[Comment | None, int]:
    """Give back the comment a reply attaches to and the reply's depth (None, 0 at top level)."""
    if parent_id is None:
        return None, 0
    parent = await repo.get(session, parent_id)
    if (
        parent is None
        or parent.article_id != article.id
        or parent.status == CommentStatus.hidden.value
    ):
        raise CommentNotFound("No such comment to reply to.")
    # Deeper replies attach to the deepest allowed ancestor, so the thread stays readable.
    while parent.depth >= max_depth and parent.parent_id is not None:
        grand = await repo.get(session, parent.parent_id)
        if grand is None:
            break
        parent = grand
    return parent, min(parent.depth + 1, max_depth)


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
    parent, depth = await _reply_target(session, article, parent_id, max_depth)
    comment = Comment(
        article_id=pk(article.id),
        author_id=author.id,
        parent_id=parent.id if parent else None,
        depth=depth,
        body=body,
        body_html=await markup.to_html_off_loop(body),
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
    comment = await repo.get(session, comment_id)
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
    comment.body_html = await markup.to_html_off_loop(body)
    comment.edited_at = utcnow()
    session.add(comment)
    return comment


async def delete(session: AsyncSession, user: User, comment_id: int) -> None:
    """Erase the user's own comment; allowed under a ban, so words can always be taken back."""
    comment = await own_comment(session, user, comment_id)
    mark_deleted(comment)
    session.add(comment)
    invalidate_on_commit(session)


def mark_deleted(comment: Comment) -> None:
    """Erase the comment's text and mark it deleted (its replies keep their place)."""
    comment.status = CommentStatus.deleted.value
    comment.body = ""
    comment.body_html = ""


async def visible_comment(session: AsyncSession, comment_id: int) -> Comment:
    """Give back the visible comment with this id (CommentNotFound otherwise)."""
    comment = await repo.get(session, comment_id)
    if comment is None or comment.status != CommentStatus.visible.value:
        raise CommentNotFound("No such comment.")
    return comment


async def like(session: AsyncSession, user: User, comment_id: int, *, on: bool) -> int:
    """Like or unlike (one like per reader); give back the comment's like count."""
    await refuse_if_banned(session, user)
    comment = await visible_comment(session, comment_id)
    user_id = pk(user.id)
    if on:
        changed, delta = await repo.add_like(session, comment_id, user_id), 1
    else:
        changed, delta = await repo.remove_like(session, comment_id, user_id), -1
    if changed:
        await repo.shift_like_count(session, comment, delta)
    return comment.like_count


async def report(session: AsyncSession, user: User, comment_id: int, reason: str) -> None:
    """Flag a visible comment for the moderators (once per reader)."""
    await refuse_if_banned(session, user)
    await visible_comment(session, comment_id)
    await repo.add_report(session, comment_id, pk(user.id), reason)


async def wants_reply_emails(session: AsyncSession, user_id: int) -> bool:
    """Give back whether the member asked for emails about replies."""
    pref = await repo.preference(session, user_id)
    return bool(pref and pref.reply_emails)


async def set_reply_emails(session: AsyncSession, user_id: int, on: bool) -> None:
    """Turn the member's reply emails on or off."""
    pref = await repo.preference(session, user_id) or CommentPreference(user_id=user_id)
    pref.reply_emails = on
    session.add(pref)


async def anonymise_author(session: AsyncSession, user_id: int) -> None:
    """Detach a deleted account from its comments; the thread keeps the words."""
    await repo.detach_author(session, user_id)


def _own_out(comment: Comment, user: User) -> CommentOut:
    return comment_out(comment, {pk(user.id): author_name(user.display_name)}, {})


async def _tell_parent_author(
    session: AsyncSession,
    settings: Settings,
    replier: User,
    article: Article,
    parent: Comment | None,
    excerpt: str,
) -> None:
    """Queue a reply email to the parent's author when they asked for them."""
    if parent is None or parent.author_id is None or parent.author_id == replier.id:
        return
    if not await wants_reply_emails(session, parent.author_id):
        return
    recipient = await accounts.get_user(session, parent.author_id)
    if recipient is None or recipient.deleted_at is not None:
        return
    message = reply_mail.reply_email(
        settings,
        to=recipient.email,
        user_id=parent.author_id,
        replier=replier.display_name,
        article=article,
        excerpt=excerpt[:300],
    )
    mail_outbox.enqueue(session, settings, message)


async def post_comment(
    session: AsyncSession,
    settings: Settings,
    user: User,
    slug: str,
    *,
    body: str,
    parent_id: int | None,
) -> CommentOut:
    """Comment or reply on a live article as its setting allows; tell the parent's author."""
    article = await live_article(session, slug)
    level = await user_reader_level(session, user, grace_days=settings.billing_grace_days)
    comment, parent = await post(
        session,
        article,
        user,
        level,
        body=body,
        parent_id=parent_id,
        max_depth=settings.comment_max_depth,
    )
    await _tell_parent_author(session, settings, user, article, parent, body)
    return _own_out(comment, user)


async def edit_comment(
    session: AsyncSession, settings: Settings, user: User, comment_id: int, body: str
) -> CommentOut:
    """Edit the user's own comment within the configured window; give back the new view."""
    window = timedelta(minutes=settings.comment_edit_minutes)
    return _own_out(await edit(session, user, comment_id, body.strip(), window), user)


async def stop_reply_emails(session: AsyncSession, settings: Settings, token: str) -> None:
    """Turn reply emails off for the account a signed unsubscribe token names."""
    user_id = reply_mail.read_token(settings, token)
    if user_id is None:
        raise InvalidInput("This link is not valid.", code="unsubscribe_token_invalid")
    await set_reply_emails(session, user_id, False)
