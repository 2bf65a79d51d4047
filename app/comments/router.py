"""HTTP for readers: read, post, edit, delete, like and report comments."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from fastapi import Query, Request, Response, status
from fastapi.responses import HTMLResponse

from app.accounts.deps import CurrentUser, OptionalUser
from app.articles import repository as articles
from app.articles.errors import ArticleNotFound
from app.articles.models import Article
from app.billing.entitlements import user_reader_level
from app.comments import notify, service
from app.comments.models import Comment, CommentStatus
from app.comments.schemas import CommentEdit, CommentIn, CommentOut, LikesOut, ReportIn
from app.core import outbox
from app.core.config import API_PREFIX
from app.core.db import pk
from app.core.deps import SessionDep, SettingsDep
from app.core.errors import InvalidInput
from app.core.fields import Id
from app.core.openapi import errors
from app.core.pagination import Cursor, Limit, Page, clamp
from app.core.ratelimit import RateLimiter
from app.core.routing import api_router

router = api_router(prefix=API_PREFIX, tags=["comments"])


async def _article(session: SessionDep, slug: str) -> Article:
    found = await articles.by_slug(session, slug)
    if not isinstance(found, Article):
        raise ArticleNotFound("No such article.")
    return found


def _out(comment: Comment, names: dict[int, str], replies: dict[int, list[Comment]]) -> CommentOut:
    deleted = comment.status == CommentStatus.deleted.value
    author: dict[str, object] | None = None
    if not deleted:
        author = (
            {"id": comment.author_id, "name": names.get(comment.author_id, service.NAMELESS)}
            if comment.author_id is not None
            else {"id": None, "name": "[deleted account]"}
        )
    return CommentOut(
        id=pk(comment.id),
        parent_id=comment.parent_id,
        author=author,
        body_html="" if deleted else comment.body_html,
        deleted=deleted,
        status=comment.status,
        likes=comment.like_count,
        created_at=comment.created_at,
        edited_at=comment.edited_at,
        replies=[_out(r, names, replies) for r in replies.get(pk(comment.id), [])],
    )


def _authors_in(rows: list[Comment], replies: dict[int, list[Comment]]) -> set[int]:
    ids = {c.author_id for c in rows if c.author_id is not None}
    for children in replies.values():
        ids |= {c.author_id for c in children if c.author_id is not None}
    return ids


@router.get("/articles/{slug}/comments", response_model=Page[CommentOut])
async def list_comments(
    slug: str,
    response: Response,
    session: SessionDep,
    user: OptionalUser,
    order: Literal["newest", "oldest", "top"] = "newest",
    parent: Id | None = None,
    nested: bool = True,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> Page[CommentOut]:
    """Comments of a live article, visible to anyone who can see the article (see README)."""
    article = await _article(session, slug)
    page = await service.thread(
        session,
        pk(article.id),
        order=order,
        parent_id=parent,
        limit=clamp(limit),
        cursor=cursor,
        nested=nested,
    )
    names = await service.authors(session, _authors_in(page.comments, page.replies))
    response.headers["Cache-Control"] = "private, no-store" if user else "public, max-age=15"
    response.headers["Vary"] = "Authorization"
    return Page[CommentOut](
        items=[_out(c, names, page.replies) for c in page.comments], next_cursor=page.next_cursor
    )


@router.post(
    "/articles/{slug}/comments",
    status_code=status.HTTP_201_CREATED,
    response_model=CommentOut,
    responses=errors(403, 429),
)
async def post_comment(
    slug: str,
    body: CommentIn,
    request: Request,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> CommentOut:
    """Comment or reply, as the article's comment setting allows (403 with a `code` if not)."""
    limiter: RateLimiter = request.app.state.limiter
    await limiter.hit(settings.comment_rate_limit, f"comment:user:{user.id}")
    article = await _article(session, slug)
    level = await user_reader_level(session, user, grace_days=settings.billing_grace_days)
    comment, parent = await service.post(
        session,
        article,
        user,
        level,
        body=body.body,
        parent_id=body.parent_id,
        max_depth=settings.comment_max_depth,
    )
    if (
        parent is not None
        and parent.author_id is not None
        and parent.author_id != user.id
        and await service.wants_reply_emails(session, parent.author_id)
    ):
        recipient = await session.get(type(user), parent.author_id)
        if recipient is not None and recipient.deleted_at is None:
            message = notify.reply_email(
                settings,
                to=recipient.email,
                user_id=parent.author_id,
                replier=user.display_name,
                article=article,
                excerpt=body.body[:300],
            )
            outbox.enqueue(session, settings, message)
    return _out(comment, {pk(user.id): service.author_name(user.display_name)}, {})


@router.patch("/comments/{comment_id}", response_model=CommentOut, responses=errors(403))
async def edit_comment(
    comment_id: Id,
    body: CommentEdit,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> CommentOut:
    """Edit your own visible comment within the edit window (not while banned)."""
    comment = await service.edit(
        session,
        user,
        comment_id,
        body.body.strip(),
        timedelta(minutes=settings.comment_edit_minutes),
    )
    return _out(comment, {pk(user.id): service.author_name(user.display_name)}, {})


@router.delete(
    "/comments/{comment_id}", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403)
)
async def delete_comment(comment_id: Id, user: CurrentUser, session: SessionDep) -> Response:
    """Delete your own visible comment (a placeholder stays while it has replies); allowed
    while banned. A comment the moderators hid is 404 to its author, as on reads."""
    await service.delete(session, user, comment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/comments/{comment_id}/like", response_model=LikesOut, responses=errors(403))
async def like(comment_id: Id, user: CurrentUser, session: SessionDep) -> LikesOut:
    """Like a comment (once per reader; again is a no-op; not while banned)."""
    return LikesOut(likes=await service.like(session, user, comment_id, on=True))


@router.delete("/comments/{comment_id}/like", response_model=LikesOut, responses=errors(403))
async def unlike(comment_id: Id, user: CurrentUser, session: SessionDep) -> LikesOut:
    """Take a like back (not while banned)."""
    return LikesOut(likes=await service.like(session, user, comment_id, on=False))


@router.post(
    "/comments/{comment_id}/report", status_code=status.HTTP_202_ACCEPTED, responses=errors(403)
)
async def report(
    comment_id: Id, body: ReportIn, user: CurrentUser, session: SessionDep
) -> dict[str, str]:
    """Report a comment to the moderators (once per reader; not while banned)."""
    await service.report(session, user, comment_id, body.reason)
    return {"status": "reported"}


@router.put("/me/comment-reply-emails", response_model=dict[str, bool])
async def reply_emails(on: bool, user: CurrentUser, session: SessionDep) -> dict[str, bool]:
    """Turn emails about replies to your comments on or off (off by default)."""
    await service.set_reply_emails(session, pk(user.id), on)
    return {"reply_emails": on}


@router.post("/comments/reply-emails/unsubscribe", response_class=HTMLResponse)
async def stop_reply_emails(
    token: Annotated[str, Query(max_length=100)], session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """One-click stop for reply emails, from the link in those emails; no login."""
    user_id = notify.read_token(settings, token)
    if user_id is None:
        raise InvalidInput("This link is not valid.", code="unsubscribe_token_invalid")
    await service.set_reply_emails(session, user_id, False)
    return HTMLResponse("<!doctype html><p>You will get no more reply emails.</p>")
