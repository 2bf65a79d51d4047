"""HTTP for moderators: list with filters, hide, unhide, delete, and ban from commenting."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response, status

from app.accounts.deps import EditorUser
from app.accounts.models import User
from app.comments import moderation
from app.comments.models import CommentStatus
from app.comments.schemas import AdminCommentOut, BanIn
from app.core.config import API_PREFIX
from app.core.deps import SessionDep
from app.core.fields import Id
from app.core.pagination import Cursor, Limit, Page
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/admin", tags=["admin: comments"])


@router.get("/comments", response_model=Page[AdminCommentOut])
async def list_comments(
    _editor: EditorUser,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status_filter: Annotated[CommentStatus | None, Query(alias="status")] = None,
    reported: bool | None = None,
    article_id: Annotated[int | None, Query(alias="article")] = None,
    user_id: Annotated[int | None, Query(alias="user")] = None,
) -> Page[AdminCommentOut]:
    """Every comment, hidden and deleted included, newest first; filter by status, reports,
    article or author."""
    filters = moderation.ModerationFilters(
        status=status_filter, reported=reported, article_id=article_id, user_id=user_id
    )
    return await moderation.moderation_list(session, filters, limit=limit, cursor=cursor)


async def _moderate(
    session: SessionDep, staff: User, comment_id: Id, to: CommentStatus
) -> Response:
    await moderation.set_status(session, staff, comment_id, to)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/comments/{comment_id}/hide", status_code=status.HTTP_204_NO_CONTENT)
async def hide(comment_id: Id, editor: EditorUser, session: SessionDep) -> Response:
    """Hide a comment from readers (reversible); an editor's or admin's needs an admin."""
    return await _moderate(session, editor, comment_id, CommentStatus.hidden)


@router.post("/comments/{comment_id}/unhide", status_code=status.HTTP_204_NO_CONTENT)
async def unhide(comment_id: Id, editor: EditorUser, session: SessionDep) -> Response:
    """Show a hidden comment again; an editor's or admin's needs an admin."""
    return await _moderate(session, editor, comment_id, CommentStatus.visible)


@router.delete("/comments/{comment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete(comment_id: Id, editor: EditorUser, session: SessionDep) -> Response:
    """Delete a comment (its text is erased; a placeholder holds its replies); an editor's
    or admin's needs an admin."""
    return await _moderate(session, editor, comment_id, CommentStatus.deleted)


@router.post("/comments/bans/{member_id}", status_code=status.HTTP_201_CREATED)
async def ban(
    member_id: Id, body: BanIn, editor: EditorUser, session: SessionDep
) -> dict[str, object]:
    """Stop a reader commenting, until a date or for good, with a reason.

    Editors may ban readers and authors; banning an editor or an admin takes an admin (403
    `moderation_needs_admin`). The ban also stops edits, likes and reports, not deletes.
    """
    return await moderation.ban_member(
        session, editor, member_id, until=body.until, reason=body.reason
    )


@router.delete("/comments/bans/{member_id}", status_code=status.HTTP_204_NO_CONTENT)
async def unban(member_id: Id, editor: EditorUser, session: SessionDep) -> Response:
    """Let a banned reader comment again (an editor's or admin's ban is lifted by an admin)."""
    await moderation.unban_member(session, editor, member_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
