"""The statements of the staff side's tags: the list with every article counted, and the
rename's checks."""

from __future__ import annotations

from sqlalchemy import func
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.articles.models import ArticleTag, Tag


async def staff_list(session: AsyncSession) -> list[tuple[int, str, str, int]]:
    """Every tag with the number of articles it is on (any status), by name."""
    rows = await session.exec(
        select(Tag.id, Tag.slug, Tag.name, func.count(col(ArticleTag.article_id)))
        .join(ArticleTag, col(ArticleTag.tag_id) == Tag.id, isouter=True)
        .group_by(col(Tag.id), col(Tag.slug), col(Tag.name))
        .order_by(col(Tag.name), col(Tag.id))
    )
    return [(int(i or 0), slug, name, count) for i, slug, name, count in rows]


async def tag(session: AsyncSession, tag_id: int) -> Tag | None:
    return await session.get(Tag, tag_id)


async def slug_in_use(session: AsyncSession, slug: str, other_than: int) -> bool:
    """Say whether another tag than `other_than` has `slug`."""
    found = await session.exec(select(Tag.id).where(Tag.slug == slug, Tag.id != other_than))
    return found.first() is not None


async def articles_on(session: AsyncSession, tag_id: int) -> int:
    found = await session.exec(
        select(func.count(col(ArticleTag.article_id))).where(ArticleTag.tag_id == tag_id)
    )
    return int(found.one())
