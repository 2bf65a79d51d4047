"""HTTP for the audit log of staff writes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.accounts.deps import AdminUser
from app.admin import service
from app.admin.schemas import AuditOut
from app.core.config import API_PREFIX
from app.core.deps import SessionDep
from app.core.fields import Id
from app.core.pagination import Cursor, Limit, Page
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/admin", tags=["admin: members"])


@router.get("/audit", response_model=Page[AuditOut])
async def audit_log(
    _admin: AdminUser,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    actor: Id | None = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=16)] = None,
) -> Page[AuditOut]:
    """Every staff write, newest first (append-only: there is no way to change it here)."""
    filters = service.AuditFilters(actor=actor, entity=entity, entity_id=entity_id, action=action)
    return await service.audit_log(session, filters, limit=limit, cursor=cursor)
