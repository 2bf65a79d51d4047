"""HTTP for staff: /api/v1/admin/articles (drafts, edits, publishing, revisions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request, Response, status

from app.accounts.deps import StaffUser
from app.articles import admin_service
from app.articles.markdown import Renderer
from app.articles.models import Status
from app.articles.schemas import (
    ArticleCreate,
    ArticleStaff,
    ArticleUpdate,
    PublishIn,
    RevisionOut,
    ScheduleIn,
)
from app.core.config import API_PREFIX
from app.core.deps import SessionDep
from app.core.errors import InvalidInput
from app.core.fields import Id
from app.core.openapi import errors
from app.core.pagination import Cursor, Limit, Page
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/admin/articles", tags=["admin: articles"])


def _renderer(request: Request) -> Renderer:
    renderer: Renderer = request.app.state.renderer
    return renderer


def _if_match(value: str | None) -> int | None:
    if value is None:
        return None
    cleaned = value.strip().removeprefix("W/").strip('"').removeprefix("v")
    if not cleaned.isdigit():
        raise InvalidInput('If-Match must be the ETag of the article, like "v3".')
    return int(cleaned)


def _staff_headers(response: Response, answer: ArticleStaff) -> ArticleStaff:
    response.headers["ETag"] = f'"v{answer.version}"'
    response.headers["Cache-Control"] = "private, no-store"
    return answer


@router.get("", response_model=Page[ArticleStaff])
async def list_articles(
    user: StaffUser,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
) -> Page[ArticleStaff]:
    """All articles a staff member may see (authors: their own), newest edits first."""
    return await admin_service.page(session, user, status=status_filter, limit=limit, cursor=cursor)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ArticleStaff, responses=errors(409)
)
async def create_article(
    body: ArticleCreate, request: Request, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Create a draft (any staff role)."""
    answer = await admin_service.create(session, _renderer(request), user, body)
    response.headers["Location"] = f"{API_PREFIX}/admin/articles/{answer.id}"
    return _staff_headers(response, answer)


@router.get("/{article_id}", response_model=ArticleStaff)
async def get_article(
    article_id: Id, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """One article in any status, with its Markdown source; the ETag carries its version."""
    return _staff_headers(response, await admin_service.read(session, user, article_id))


@router.patch("/{article_id}", response_model=ArticleStaff, responses=errors(409, 428))
async def update_article(
    article_id: Id,
    body: ArticleUpdate,
    request: Request,
    response: Response,
    user: StaffUser,
    session: SessionDep,
    if_match: Annotated[str | None, Header()] = None,
) -> ArticleStaff:
    """Edit an article; send `If-Match` (the ETag) or `version`. A stale write gets 409."""
    answer = await admin_service.edit(
        session, _renderer(request), user, article_id, body, if_match=_if_match(if_match)
    )
    return _staff_headers(response, answer)


@router.delete("/{article_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_article(article_id: Id, user: StaffUser, session: SessionDep) -> Response:
    """Delete an article (authors: their own drafts)."""
    await admin_service.delete(session, user, article_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{article_id}/publish", response_model=ArticleStaff)
async def publish(
    article_id: Id,
    response: Response,
    user: StaffUser,
    session: SessionDep,
    body: PublishIn | None = None,
) -> ArticleStaff:
    """Publish now (or backdated); editors and admins."""
    when = body.published_at if body else None
    answer = await admin_service.change_status(
        session, user, article_id, Status.published, published_at=when
    )
    return _staff_headers(response, answer)


@router.post("/{article_id}/schedule", response_model=ArticleStaff)
async def schedule(
    article_id: Id, body: ScheduleIn, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Publish at a future `published_at`; it goes live on time even if no worker runs then."""
    answer = await admin_service.change_status(
        session, user, article_id, Status.scheduled, published_at=body.published_at
    )
    return _staff_headers(response, answer)


@router.post("/{article_id}/unpublish", response_model=ArticleStaff)
async def unpublish(
    article_id: Id, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Take an article back to draft."""
    answer = await admin_service.change_status(session, user, article_id, Status.draft)
    return _staff_headers(response, answer)


@router.post("/{article_id}/archive", response_model=ArticleStaff)
async def archive(
    article_id: Id, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Withdraw an article from the public archive, keeping it for the record."""
    answer = await admin_service.change_status(session, user, article_id, Status.archived)
    return _staff_headers(response, answer)


@router.get("/{article_id}/revisions", response_model=list[RevisionOut])
async def list_revisions(article_id: Id, user: StaffUser, session: SessionDep) -> list[RevisionOut]:
    """Every saved version of the article, newest first."""
    return [
        RevisionOut.model_validate(r, from_attributes=True)
        for r in await admin_service.revisions(session, user, article_id)
    ]


@router.post(
    "/{article_id}/revisions/{revision_id}/restore",
    response_model=ArticleStaff,
    responses=errors(409),
)
async def restore_revision(
    article_id: Id,
    revision_id: Id,
    request: Request,
    response: Response,
    user: StaffUser,
    session: SessionDep,
) -> ArticleStaff:
    """Make a past revision current again (recorded as a new revision)."""
    answer = await admin_service.restore(session, _renderer(request), user, article_id, revision_id)
    return _staff_headers(response, answer)
