"""HTTP for staff: /api/v1/admin/articles (drafts, edits, publishing, revisions)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Header, Query, Request, Response, status
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.deps import StaffUser
from app.articles import queries, service
from app.articles.markdown import Renderer
from app.articles.models import Article, Status
from app.articles.schemas import (
    ArticleCreate,
    ArticleStaff,
    ArticleUpdate,
    AuthorOut,
    PublishIn,
    RevisionOut,
    ScheduleIn,
    TagOut,
)
from app.core.config import API_PREFIX
from app.core.db import pk
from app.core.deps import SessionDep
from app.core.errors import InvalidInput
from app.core.fields import Id
from app.core.openapi import errors
from app.core.pagination import Cursor, Limit, Page, newest_first
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


async def _out(
    session: AsyncSession, article: Article, response: Response | None = None
) -> ArticleStaff:
    article_id = pk(article.id)
    extra = await queries.extras(session, [article_id])
    if response is not None:
        response.headers["ETag"] = f'"v{article.version}"'
        response.headers["Cache-Control"] = "private, no-store"
    return ArticleStaff(
        **article.model_dump(exclude={"excerpt_override", "created_by_id", "comments"}),
        excerpt_override=article.excerpt_override,
        comments=article.comments,  # type: ignore[arg-type]
        authors=[AuthorOut(id=i, name=n) for i, n in extra.authors.get(article_id, [])],
        tags=[TagOut(slug=s, name=n) for s, n in extra.tags.get(article_id, [])],
    )


@router.get("", response_model=Page[ArticleStaff])
async def list_articles(
    user: StaffUser,
    session: SessionDep,
    limit: Limit = 20,
    cursor: Cursor = None,
    status_filter: Annotated[Status | None, Query(alias="status")] = None,
) -> Page[ArticleStaff]:
    """All articles a staff member may see (authors: their own), newest edits first."""
    query = select(Article)
    if user.role not in service.EDITOR_ROLES:
        from app.articles.models import ArticleAuthor

        query = query.where(
            col(Article.id).in_(
                select(ArticleAuthor.article_id).where(ArticleAuthor.user_id == user.id)
            )
        )
    if status_filter is not None:
        query = query.where(Article.status == status_filter.value)
    rows, next_cursor = await newest_first(
        session, query, col(Article.id), limit=limit, cursor=cursor
    )
    return Page[ArticleStaff](items=[await _out(session, a) for a in rows], next_cursor=next_cursor)


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=ArticleStaff, responses=errors(409)
)
async def create_article(
    body: ArticleCreate, request: Request, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Create a draft (any staff role)."""
    article = await service.create_article(session, _renderer(request), user, body)
    response.headers["Location"] = f"{API_PREFIX}/admin/articles/{article.id}"
    return await _out(session, article, response)


@router.get("/{article_id}", response_model=ArticleStaff)
async def get_article(
    article_id: Id, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """One article in any status, with its Markdown source; the ETag carries its version."""
    article = await service.load_for_staff(session, user, article_id)
    return await _out(session, article, response)


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
    article = await service.load_for_staff(session, user, article_id)
    article = await service.update_article(
        session, _renderer(request), user, article, body, if_match=_if_match(if_match)
    )
    return await _out(session, article, response)


@router.delete("/{article_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_article(article_id: Id, user: StaffUser, session: SessionDep) -> Response:
    """Delete an article (authors: their own drafts)."""
    article = await service.load_for_staff(session, user, article_id)
    await service.delete_article(session, user, article)
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
    article = await service.load_for_staff(session, user, article_id)
    when = body.published_at if body else None
    await service.set_status(session, user, article, Status.published, published_at=when)
    return await _out(session, article, response)


@router.post("/{article_id}/schedule", response_model=ArticleStaff)
async def schedule(
    article_id: Id, body: ScheduleIn, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Publish at a future `published_at`; it goes live on time even if no worker runs then."""
    article = await service.load_for_staff(session, user, article_id)
    await service.set_status(
        session, user, article, Status.scheduled, published_at=body.published_at
    )
    return await _out(session, article, response)


@router.post("/{article_id}/unpublish", response_model=ArticleStaff)
async def unpublish(
    article_id: Id, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Take an article back to draft."""
    article = await service.load_for_staff(session, user, article_id)
    await service.set_status(session, user, article, Status.draft)
    return await _out(session, article, response)


@router.post("/{article_id}/archive", response_model=ArticleStaff)
async def archive(
    article_id: Id, response: Response, user: StaffUser, session: SessionDep
) -> ArticleStaff:
    """Withdraw an article from the public archive, keeping it for the record."""
    article = await service.load_for_staff(session, user, article_id)
    await service.set_status(session, user, article, Status.archived)
    return await _out(session, article, response)


@router.get("/{article_id}/revisions", response_model=list[RevisionOut])
async def list_revisions(article_id: Id, user: StaffUser, session: SessionDep) -> list[RevisionOut]:
    """Every saved version of the article, newest first."""
    await service.load_for_staff(session, user, article_id)
    return [
        RevisionOut.model_validate(r, from_attributes=True)
        for r in await service.revisions(session, article_id)
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
    article = await service.load_for_staff(session, user, article_id)
    article = await service.restore_revision(
        session, _renderer(request), user, article, revision_id
    )
    return await _out(session, article, response)
