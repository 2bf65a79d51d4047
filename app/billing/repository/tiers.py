"""What is sold, by tier: the tier rows and the plans (prices) each one has."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.models import Plan, Tier
from app.billing.schemas import PlanOut
from app.core.db import Query, Reads


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


async def tiers_by_slugs(session: AsyncSession, slugs: Sequence[str]) -> Sequence[Tier]:
    """The tiers with these slugs (those that exist)."""
    return (await session.exec(select(Tier).where(col(Tier.slug).in_(slugs)))).all()


# The paywall's offer as one direct read (`db.reads`), for a refused article page, which
# opens no ORM session: the plans on sale of the tiers on sale (active, shown on the public
# page), the plans shaped like /billing/plans.
_PLAN_KEYS = tuple(PlanOut.model_fields)
OFFER = Query.portable(
    f"""SELECT t.slug, t.name, {", ".join(f"p.{key}" for key in _PLAN_KEYS)}
FROM plan p JOIN tier t ON t.id = p.tier_id
WHERE p.active = :yes AND t.active = :yes AND t.visible = :yes
ORDER BY t.sort_order, t.id, p.sort_order, p.id"""  # noqa: S608 - field names only
)


async def paywall_offer(
    reads: Reads, tier_ids: Iterable[int] | None
) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """The tiers on sale among `tier_ids` (None: every one) and their plans on sale."""
    wanted = None if tier_ids is None else set(tier_ids)
    tiers: dict[str, dict[str, str]] = {}
    plans: list[dict[str, Any]] = []
    for slug, name, *plan in await reads.all(OFFER, {"yes": True}):
        row = dict(zip(_PLAN_KEYS, plan, strict=True))
        if wanted is not None and row["tier_id"] not in wanted:
            continue
        tiers.setdefault(slug, {"slug": slug, "name": name})
        plans.append(row)
    return list(tiers.values()), plans
