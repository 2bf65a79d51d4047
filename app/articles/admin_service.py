"""The staff console's calls, one per admin route: load what the staff member may see, apply
the rule from service.py, and give back the answer (`ArticleStaff`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.articles import derived, repository, service
from app.articles.errors import SlugTaken, TagNotFound
from app.articles.markdown import Renderer
from app.articles.models import Article, ArticleRevision, Status
from app.articles.repository import tags as tag_repository
from app.articles.schemas import (
    ArticleCreate,
    ArticleStaff,
    ArticleUpdate,
    AuthorOut,
    Extras,
    TagOut,
    TagStaff,
    TagUpdate,
)
from app.core.db import pk
from app.core.pagination import Page


def _view(article: Article, extra: Extras) -> ArticleStaff:
    authors, tags = extra.of(pk(article.id))
    return ArticleStaff(
        **article.model_dump(exclude={"excerpt_override", "created_by_id", "comments"}),
        excerpt_override=article.excerpt_override,
        comments=article.comments,  # type: ignore[arg-type]
        authors=[AuthorOut(id=i, name=n) for i, n in authors],
        tags=[TagOut(slug=s, name=n) for s, n in tags],
        tiers=extra.tiers.get(pk(article.id), []),
        gated_after=article.gated_at,
    )


async def _answer(session: AsyncSession, article: Article) -> ArticleStaff:
    return _view(article, await repository.extras(session, [pk(article.id)]))


async def page(
    session: AsyncSession, user: User, *, status: Status | None, limit: int, cursor: str | None
) -> Page[ArticleStaff]:
    """All articles a staff member may see (authors: their own), newest first."""
    rows, next_cursor = await repository.staff_page(
        session,
        author_id=None if user.role in service.EDITOR_ROLES else pk(user.id),
        status=status.value if status is not None else None,
        limit=limit,
        cursor=cursor,
    )
    # Authors and tags of the whole page at once, not per row.
    extra = await repository.extras(session, [pk(a.id) for a in rows])
    return Page[ArticleStaff](items=[_view(a, extra) for a in rows], next_cursor=next_cursor)


async def create(
    session: AsyncSession, renderer: Renderer, user: User, data: ArticleCreate
) -> ArticleStaff:
    """Create a draft and answer it."""
    return await _answer(session, await service.create_article(session, renderer, user, data))


async def read(session: AsyncSession, user: User, article_id: int) -> ArticleStaff:
    """One article in any status, as staff see it."""
    return await _answer(session, await service.load_for_staff(session, user, article_id))


async def edit(
    session: AsyncSession,
    renderer: Renderer,
    user: User,
    article_id: int,
    data: ArticleUpdate,
    *,
    if_match: int | None,
) -> ArticleStaff:
    """Apply a partial edit (version-checked) and answer the article as it now is."""
    article = await service.load_for_staff(session, user, article_id)
    article = await service.update_article(
        session, renderer, user, article, data, if_match=if_match
    )
    return await _answer(session, article)


async def delete(session: AsyncSession, user: User, article_id: int) -> None:
    """Delete an article the staff member may delete."""
    article = await service.load_for_staff(session, user, article_id)
    await service.delete_article(session, user, article)


async def change_status(
    session: AsyncSession,
    user: User,
    article_id: int,
    status: Status,
    *,
    published_at: datetime | None = None,
) -> ArticleStaff:
    """Publish, schedule, unpublish or archive, and answer the article."""
    article = await service.load_for_staff(session, user, article_id)
    await service.set_status(session, user, article, status, published_at=published_at)
    return await _answer(session, article)


async def revisions(
    session: AsyncSession, user: User, article_id: int
) -> Sequence[ArticleRevision]:
    """Every saved version of an article the staff member may see, newest first."""
    await service.load_for_staff(session, user, article_id)
    return await repository.revisions(session, article_id)


async def restore(
    session: AsyncSession, renderer: Renderer, user: User, article_id: int, revision_id: int
) -> ArticleStaff:
    """Make a past revision current again and answer the article."""
    article = await service.load_for_staff(session, user, article_id)
    article = await service.restore_revision(session, renderer, user, article, revision_id)
    return await _answer(session, article)


# --- tags ---


async def tags(session: AsyncSession) -> list[TagStaff]:
    """Every tag, by name, with the articles it is on (any status)."""
    rows = await tag_repository.staff_list(session)
    return [TagStaff(id=i, slug=s, name=n, articles=c) for i, s, n, c in rows]


async def rename_tag(session: AsyncSession, tag_id: int, data: TagUpdate) -> TagStaff:
    """Rename a tag (name, slug or both); its articles' pages and search entries follow."""
    tag = await tag_repository.tag(session, tag_id)
    if tag is None:
        raise TagNotFound("No such tag.")
    if data.slug is not None and await tag_repository.slug_in_use(session, data.slug, tag_id):
        raise SlugTaken("Another tag has this slug.")
    tag.name = data.name if data.name is not None else tag.name
    tag.slug = data.slug if data.slug is not None else tag.slug
    session.add(tag)
    await derived.for_tag(session, tag_id)
    count = await tag_repository.articles_on(session, tag_id)
    return TagStaff(id=tag_id, slug=tag.slug, name=tag.name, articles=count)
