"""HTTP for admins: plans, complimentary access, and the Stripe event log with replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response, status

from app.accounts.deps import AdminUser
from app.admin import audit
from app.billing import events, service
from app.billing.deps import GatewayDep
from app.billing.models import EventStatus
from app.billing.schemas import CompIn, CompOut, EventOut, PlanAdminOut, PlanCreate, PlanUpdate
from app.core.config import API_PREFIX
from app.core.db import pk
from app.core.deps import DatabaseDep, SessionDep, SettingsDep
from app.core.fields import Id
from app.core.openapi import errors
from app.core.pagination import Cursor, Limit, Page
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/admin", tags=["admin: billing"])


@router.get("/plans", response_model=list[PlanAdminOut])
async def list_plans(_admin: AdminUser, session: SessionDep) -> list[PlanAdminOut]:
    """Every plan, on sale or not."""
    plans = await service.all_plans(session)
    return [PlanAdminOut.model_validate(p, from_attributes=True) for p in plans]


@router.post(
    "/plans",
    status_code=status.HTTP_201_CREATED,
    response_model=PlanAdminOut,
    responses=errors(409),
)
async def create_plan(
    body: PlanCreate, _admin: AdminUser, session: SessionDep, db: DatabaseDep, gateway: GatewayDep
) -> PlanAdminOut:
    """Create a plan; without a Stripe price id one is created at the gateway."""
    plan = await service.create_plan(db, gateway, body, actor=audit.actor_of(session))
    return PlanAdminOut.model_validate(plan, from_attributes=True)


@router.patch("/plans/{plan_id}", response_model=PlanAdminOut, responses=errors(409))
async def update_plan(
    plan_id: Id, body: PlanUpdate, _admin: AdminUser, session: SessionDep
) -> PlanAdminOut:
    """Rename, describe, reorder, retire a plan (prices are immutable: make a new plan)."""
    plan = await service.update_plan(session, plan_id, body)
    return PlanAdminOut.model_validate(plan, from_attributes=True)


@router.post(
    "/members/{member_id}/comp",
    status_code=status.HTTP_201_CREATED,
    response_model=CompOut,
    responses=errors(409),
)
async def grant_comp(member_id: Id, body: CompIn, admin: AdminUser, session: SessionDep) -> CompOut:
    """Give a member complimentary access, optionally until `ends_at`: to the tier named by
    `tier` (a slug; unknown: 422 `unknown_tier`, archived: 409 `tier_archived`), or to every
    tier without one."""
    grant = await service.grant_comp(
        session, admin, member_id, ends_at=body.ends_at, reason=body.reason, tier=body.tier
    )
    return CompOut(
        id=pk(grant.id),
        user_id=grant.user_id,
        tier=body.tier,
        starts_at=grant.starts_at,
        ends_at=grant.ends_at,
        reason=grant.reason,
    )


@router.delete("/members/{member_id}/comp", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_comp(member_id: Id, _admin: AdminUser, session: SessionDep) -> Response:
    """End a member's complimentary access now."""
    await service.revoke_comps(session, member_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/billing/events", response_model=Page[EventOut])
async def list_events(
    _admin: AdminUser,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    status_filter: Annotated[EventStatus | None, Query(alias="status")] = None,
    type_filter: Annotated[str | None, Query(alias="type", max_length=100)] = None,
) -> Page[EventOut]:
    """Stored Stripe events, newest first, with their processing status and error."""
    rows, next_cursor = await events.stored_events(
        session, status=status_filter, kind=type_filter, limit=limit, cursor=cursor
    )
    return Page[EventOut](
        items=[EventOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )


@router.post("/billing/events/{event_row_id}/replay", response_model=EventOut)
async def replay_event(
    event_row_id: Id,
    _admin: AdminUser,
    session: SessionDep,
    db: DatabaseDep,
    gateway: GatewayDep,
    settings: SettingsDep,
) -> EventOut:
    """Apply a stored event again (failed or unmatched ones; processed events are no-ops).
    What it writes is in the audit log under the admin who replayed it. An event that fails
    again comes back with its status `failed` and the error, as the log keeps it."""
    # The request's session only names the admin: the event runs its own transactions.
    actor = audit.actor_of(session)
    row = await events.replay(db, gateway, settings, event_row_id, actor=actor)
    return EventOut.model_validate(row, from_attributes=True)
