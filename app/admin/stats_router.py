"""HTTP for the publication's numbers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from app.accounts.deps import AdminUser
from app.admin import service
from app.core.config import API_PREFIX
from app.core.deps import SessionDep, SettingsDep
from app.core.fields import Day
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/admin", tags=["admin: members"])


@router.get("/stats")
async def get_stats(
    _admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    start: Annotated[Day | None, Query(alias="from")] = None,
    end: Annotated[Day | None, Query(alias="to")] = None,
) -> dict[str, object]:
    """Totals, MRR per currency, members and MRR per tier, revenue and refunds, new paid and
    churned per day, trials, conversions by article, sign-ups by source, and newsletter
    results."""
    return await service.stats_report(session, settings, start, end)
