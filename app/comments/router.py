"""HTTP for readers: read, post, edit, delete, like and report comments."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query, Request, Response, status
from fastapi.responses import HTMLResponse

from app.accounts.deps import CurrentUser, OptionalUser
from app.comments import service, threads
from app.comments.schemas import CommentEdit, CommentIn, CommentOut, LikesOut, ReportIn
from app.core.config import API_PREFIX
from app.core.db import pk
from app.core.deps import SessionDep, SettingsDep
from app.core.fields import Id
from app.core.openapi import errors
from app.core.pagination import Cursor, Limit, Page
from app.core.ratelimit import RateLimiter
from app.core.routing import api_router

router = api_router(prefix=API_PREFIX, tags=["comments"])


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
    page = await threads.article_thread(
        session,
        slug,
        order=order,
        parent_id=parent,
        limit=limit,
        cursor=cursor,
        nested=nested,
    )
    response.headers["Cache-Control"] = "private, no-store" if user else "public, max-age=15"
    response.headers["Vary"] = "Authorization"
    return page


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
    return await service.post_comment(
        session, settings, user, slug, body=body.body, parent_id=body.parent_id
    )


@router.patch("/comments/{comment_id}", response_model=CommentOut, responses=errors(403))
async def edit_comment(
    comment_id: Id,
    body: CommentEdit,
    user: CurrentUser,
    session: SessionDep,
    settings: SettingsDep,
) -> CommentOut:
    """Edit your own visible comment within the edit window (not while banned)."""
    return await service.edit_comment(session, settings, user, comment_id, body.body)


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
    await service.stop_reply_emails(session, settings, token)
    return HTMLResponse("<!doctype html><p>You will get no more reply emails.</p>")
