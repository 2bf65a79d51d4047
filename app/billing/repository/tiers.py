"""What is sold, by tier: the tier rows and the plans (prices) each one has."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.models import Plan, Tier


async def tier(session: AsyncSession, tier_id: int) -> Tier | None:
    return await session.get(Tier, tier_id)


async def tier_by_slug(session: AsyncSession, slug: str) -> Tier | None:
    return (await session.exec(select(Tier).where(Tier.slug == slug))).first()


async def default_tier(session: AsyncSession) -> Tier | None:
    """The tier plans created without one go into (at most one, by a unique index)."""
    return (await session.exec(select(Tier).where(Tier.is_default == True))).first()  # noqa: E712


async def all_tiers(session: AsyncSession) -> Sequence[Tier]:
    """Every tier, archived ones too, in display order."""
    return (await session.exec(select(Tier).order_by(col(Tier.sort_order), col(Tier.id)))).all()


async def public_tiers(session: AsyncSession) -> Sequence[Tier]:
    """The tiers shown on the public page (visible and active), in display order."""
    rows = await session.exec(
        select(Tier)
        .where(Tier.visible == True, Tier.active == True)  # noqa: E712
        .order_by(col(Tier.sort_order), col(Tier.id))
    )
    return rows.all()


async def plans_of_tiers(
    session: AsyncSession, tier_ids: Sequence[int], *, on_sale_only: bool
) -> Sequence[Plan]:
    """The plans of these tiers in display order, all of them or only those on sale."""
    query = select(Plan).where(col(Plan.tier_id).in_(tier_ids))
    if on_sale_only:
        query = query.where(Plan.active == True)  # noqa: E712
    return (await session.exec(query.order_by(col(Plan.sort_order), col(Plan.id)))).all()
