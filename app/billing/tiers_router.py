"""HTTP for tiers: the public catalogue and the admins' tier management."""

from __future__ import annotations

from functools import partial

from fastapi import Request, Response, status

from app.accounts.deps import AdminUser
from app.billing import tiers
from app.billing.schemas import TierAdminOut, TierCreate, TierOut, TierUpdate
from app.core.cache import ResponseCache, cached_response
from app.core.config import API_PREFIX
from app.core.deps import DatabaseDep, SessionDep
from app.core.fields import Id
from app.core.openapi import errors
from app.core.routing import api_router

router = api_router(prefix=API_PREFIX, tags=["billing"])
admin_router = api_router(prefix=f"{API_PREFIX}/admin/tiers", tags=["admin: billing"])

# The catalogue is the same for every reader: one entry of the response cache, dropped by
# every tier or plan write (they bump the content version).
CACHE_KEY = "tiers"


@router.get("/tiers", response_model=list[TierOut])
async def list_tiers(request: Request, db: DatabaseDep) -> Response:
    """What readers can have: the free tier first, then each tier on the public page with
    its prices on sale, in display order."""
    cache: ResponseCache = request.app.state.response_cache
    entry = await cache.fetch(CACHE_KEY, partial(tiers.public_page, db))
    return cached_response(request, entry.body, anonymous=True, etag=entry.etag)


@admin_router.get("", response_model=list[TierAdminOut])
async def list_all(_admin: AdminUser, session: SessionDep) -> list[TierAdminOut]:
    """Every tier, archived and hidden ones too, with every plan."""
    return await tiers.all_tiers(session)


@admin_router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=TierAdminOut, responses=errors(409)
)
async def create(body: TierCreate, _admin: AdminUser, session: SessionDep) -> TierAdminOut:
    """Create a paid tier; add its prices with `POST /admin/plans {tier_id}`. A slug taken is
    409 `tier_slug_taken`; `free` is 422 `tier_slug_reserved`."""
    return await tiers.create_tier(session, body)


@admin_router.get("/{tier_id}", response_model=TierAdminOut, responses=errors(404))
async def get_one(tier_id: Id, _admin: AdminUser, session: SessionDep) -> TierAdminOut:
    """One tier with every plan."""
    return await tiers.tier_detail(session, tier_id)


@admin_router.patch("/{tier_id}", response_model=TierAdminOut, responses=errors(404, 409))
async def update(
    tier_id: Id, body: TierUpdate, _admin: AdminUser, session: SessionDep
) -> TierAdminOut:
    """Rename, describe, reorder, show or hide a tier; `active: false` archives it (as
    `…/archive`), `active: true` restores it (its plans stay off sale until put back);
    `default: true` makes it the tier new plans go into. The slug never changes."""
    return await tiers.update_tier(session, tier_id, body)


@admin_router.post("/{tier_id}/archive", response_model=TierAdminOut, responses=errors(404, 409))
async def archive(tier_id: Id, _admin: AdminUser, session: SessionDep) -> TierAdminOut:
    """Take a tier and its plans off sale; its subscribers keep their subscriptions. The
    default tier: 409 `tier_is_default`."""
    return await tiers.archive_tier(session, tier_id)
