"""Tier rules: the catalogue readers see, staff edits and archiving, the default tier that
plans go into when they name none, and each tier's product at the payment provider."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing import repository
from app.billing.errors import (
    PaymentProviderUnavailable,
    TierArchived,
    TierIsDefault,
    TierNotFound,
    TierSlugReserved,
    TierSlugTaken,
    UnknownTier,
)
from app.billing.gateway import GatewayError, PaymentGateway
from app.billing.models import Plan, Tier
from app.billing.schemas import (
    PlanAdminOut,
    PlanOut,
    TierAdminOut,
    TierCreate,
    TierOut,
    TierUpdate,
)
from app.core.cache import invalidate_on_commit
from app.core.db import Database, pk
from app.core.jsonutil import dumps

# The free tier is no row (see models.Tier): its card is fixed here, and its slug is kept
# from paid tiers so that a list of tier slugs can never mean it.
FREE_SLUG = "free"
FREE_TIER = TierOut(
    id=None,
    slug=FREE_SLUG,
    name="Free",
    description="Sign up free: public and members-only articles, and the free newsletters.",
    benefits=[],
    free=True,
    prices=[],
)
DEFAULT_NAME, DEFAULT_SLUG = "Paid", "paid"


async def public_page(db: Database) -> bytes:
    """The public catalogue as JSON: the free tier, then each visible active tier with its
    plans on sale, in display order."""
    async with db.session(write=False) as session:
        tiers = await repository.public_tiers(session)
        plans = await repository.plans_of_tiers(
            session, [pk(t.id) for t in tiers], on_sale_only=True
        )
    prices = _by_tier(plans)
    paid = [
        TierOut(
            id=pk(t.id),
            slug=t.slug,
            name=t.name,
            description=t.description,
            benefits=t.benefits,
            free=False,
            prices=[PlanOut.model_validate(p, from_attributes=True) for p in prices[pk(t.id)]],
        )
        for t in tiers
    ]
    return dumps([tier.model_dump() for tier in [FREE_TIER, *paid]])


def _by_tier(plans: Sequence[Plan]) -> dict[int, list[Plan]]:
    grouped: dict[int, list[Plan]] = defaultdict(list)
    for plan in plans:
        grouped[plan.tier_id].append(plan)
    return grouped


async def _admin_views(session: AsyncSession, tiers: Sequence[Tier]) -> list[TierAdminOut]:
    plans = _by_tier(
        await repository.plans_of_tiers(session, [pk(t.id) for t in tiers], on_sale_only=False)
    )
    return [
        TierAdminOut(
            id=pk(t.id),
            slug=t.slug,
            name=t.name,
            description=t.description,
            benefits=t.benefits,
            visible=t.visible,
            sort_order=t.sort_order,
            active=t.active,
            default=t.is_default,
            stripe_product_id=t.stripe_product_id,
            created_at=t.created_at,
            prices=[PlanAdminOut.model_validate(p, from_attributes=True) for p in plans[pk(t.id)]],
        )
        for t in tiers
    ]


async def all_tiers(session: AsyncSession) -> list[TierAdminOut]:
    """Every tier, archived ones too, with every plan, in display order."""
    return await _admin_views(session, await repository.all_tiers(session))


async def tier_detail(session: AsyncSession, tier_id: int) -> TierAdminOut:
    """One tier with every plan; TierNotFound for an unknown id."""
    return (await _admin_views(session, [await _existing(session, tier_id)]))[0]


async def _existing(session: AsyncSession, tier_id: int) -> Tier:
    found = await repository.tier(session, tier_id)
    if found is None:
        raise TierNotFound("No such tier.")
    return found


async def create_tier(session: AsyncSession, data: TierCreate) -> TierAdminOut:
    """Create a paid tier (no plans yet); its slug must be free and not `free`."""
    if data.slug == FREE_SLUG:
        raise TierSlugReserved("The slug `free` names the free tier.")
    if await repository.tier_by_slug(session, data.slug) is not None:
        raise TierSlugTaken("Another tier has this slug.")
    tier = Tier(**data.model_dump())
    await repository.add(session, tier)
    # The public tiers page lists it.
    invalidate_on_commit(session)
    return (await _admin_views(session, [tier]))[0]


async def update_tier(session: AsyncSession, tier_id: int, data: TierUpdate) -> TierAdminOut:
    """Apply a partial edit; `active: false` archives (as `archive_tier`), `default: true`
    moves the default here."""
    tier = await _existing(session, tier_id)
    changes = data.model_dump(exclude_unset=True)
    active, default = changes.pop("active", None), changes.pop("default", None)
    if default is False and tier.is_default:
        raise TierIsDefault("Make another tier the default instead.")
    if active is True:
        # Its plans stay off sale: staff put back on sale the ones they mean to sell.
        tier.active = True
    if default:
        await _make_default(session, tier)
    if active is False:
        await _archive(session, tier)
    for name, value in changes.items():
        setattr(tier, name, value)
    await repository.save(session, tier)
    invalidate_on_commit(session)
    return (await _admin_views(session, [tier]))[0]


async def archive_tier(session: AsyncSession, tier_id: int) -> TierAdminOut:
    """Take a tier and its plans off sale (subscribers keep what they have); the default tier
    cannot be archived."""
    tier = await _existing(session, tier_id)
    await _archive(session, tier)
    invalidate_on_commit(session)
    return (await _admin_views(session, [tier]))[0]


async def _archive(session: AsyncSession, tier: Tier) -> None:
    if tier.is_default:
        raise TierIsDefault("The default tier cannot be archived; make another the default.")
    tier.active = False
    await repository.save(session, tier)
    # An active plan always has an active tier: checkout, /billing/plans and paywalls then
    # never offer an archived tier.
    for plan in await repository.plans_of_tiers(session, [pk(tier.id)], on_sale_only=True):
        plan.active = False
        await repository.save(session, plan)


async def _make_default(session: AsyncSession, tier: Tier) -> None:
    if tier.is_default:
        return
    if not tier.active:
        raise TierArchived("An archived tier cannot be the default.")
    current = await repository.default_tier(session)
    if current is not None:
        current.is_default = False
        # Written now: the unique index on the default must never see two at once.
        await repository.add(session, current)
    tier.is_default = True


async def default_tier(session: AsyncSession) -> Tier:
    """The tier plans naming none go into. A database emptied by hand has none: then the
    tier with the slug `paid` becomes it, made ("Paid") if missing."""
    found = await repository.default_tier(session)
    if found is not None:
        return found
    found = await repository.tier_by_slug(session, DEFAULT_SLUG)
    if found is None:
        found = Tier(name=DEFAULT_NAME, slug=DEFAULT_SLUG)
    found.is_default = True
    await repository.add(session, found)
    return found


async def tier_for_plan(session: AsyncSession, tier_id: int | None) -> Tier:
    """The tier a new plan goes into: the one named (422 unknown_tier if none has that id)
    or the default; an archived tier takes no plans (409 tier_archived)."""
    tier = (
        await default_tier(session) if tier_id is None else await repository.tier(session, tier_id)
    )
    if tier is None:
        raise UnknownTier("No tier has this id.")
    if not tier.active:
        raise TierArchived("The tier is archived; restore it first.")
    return tier


async def check_plan_can_go_on_sale(session: AsyncSession, plan: Plan) -> None:
    """Refuse (409 tier_archived) putting on sale a plan of an archived tier."""
    tier = await repository.tier(session, plan.tier_id)
    if tier is not None and not tier.active:
        raise TierArchived("The plan's tier is archived; restore the tier first.")


async def sync_tier_product(session: AsyncSession, gateway: PaymentGateway, tier: Tier) -> str:
    """Give back the tier's product at the provider, created there first if it has none (the
    provider is asked before any statement, so no write transaction waits on it)."""
    if tier.stripe_product_id:
        return tier.stripe_product_id
    try:
        product_id = await gateway.ensure_product(tier_id=pk(tier.id), name=tier.name)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    tier.stripe_product_id = product_id
    await repository.save(session, tier)
    return product_id


async def sync_plan_price(
    session: AsyncSession, gateway: PaymentGateway, plan: Plan, tier: Tier
) -> Plan:
    """Create the price of a plan at the gateway, under its tier's product, if it has none
    (idempotent). A plan priced before tiers keeps its price and the product it lives under:
    the provider never moves a price to another product."""
    if plan.stripe_price_id:
        return plan
    product_id = await sync_tier_product(session, gateway, tier)
    try:
        price_id = await gateway.ensure_price(
            plan_id=pk(plan.id),
            product_id=product_id,
            amount=plan.amount,
            currency=plan.currency,
            interval=plan.interval,
        )
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    plan.stripe_product_id = product_id
    plan.stripe_price_id = price_id
    await repository.save(session, plan)
    return plan


async def sync_catalogue(session: AsyncSession, gateway: PaymentGateway) -> list[str]:
    """Give every tier its product and every plan its price at the provider where missing
    (`broadsheet stripe-sync`; a second run creates nothing); one line of report each."""
    found = await repository.all_tiers(session)
    plans = _by_tier(
        await repository.plans_of_tiers(session, [pk(t.id) for t in found], on_sale_only=False)
    )
    lines = []
    for tier in found:
        had = tier.stripe_product_id
        product_id = await sync_tier_product(session, gateway, tier)
        lines.append(f"tier {tier.id} {tier.slug!r}: product {product_id} {_state(had)}")
        for plan in plans[pk(tier.id)]:
            had = plan.stripe_price_id
            await sync_plan_price(session, gateway, plan, tier)
            lines.append(
                f"  plan {plan.id} {plan.name!r}: price {plan.stripe_price_id} {_state(had)}"
                + _elsewhere(plan, product_id)
            )
    return lines


def _state(had: str | None) -> str:
    return "kept" if had else "created"


def _elsewhere(plan: Plan, product_id: str) -> str:
    if plan.stripe_product_id in (None, product_id):
        return ""
    return f" (under product {plan.stripe_product_id}, made before tiers: prices never move)"
