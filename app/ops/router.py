"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import Header, Request
from fastapi.responses import PlainTextResponse, Response

from app.core.deps import DatabaseDep, SettingsDep
from app.core.errors import ServiceUnavailable, Unauthorized
from app.core.metrics import Metrics
from app.core.openapi import errors
from app.core.routing import api_router
from app.ops import service

router = api_router(tags=["ops"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Answer while the process is alive; touches nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz", responses={503: {"description": "Database down, read-only or migrations behind"}}
)
async def readyz(db: DatabaseDep) -> dict[str, Any]:
    """Answer 200 only when the database is reachable, takes writes and is migrated to the
    latest revision."""
    state = await service.readiness(db)
    if not state.ready:
        raise ServiceUnavailable(state.reason, code="not_ready")
    return {"status": "ready", "database": "ok", "revision": state.revision}


@router.get("/metrics", response_class=PlainTextResponse, responses=errors(401))
async def metrics(
    request: Request, settings: SettingsDep, authorization: str | None = Header(default=None)
) -> Response:
    """Prometheus text exposition of request counts and latencies."""
    if settings.metrics_token and authorization != f"Bearer {settings.metrics_token}":
        raise Unauthorized("A metrics token is required.")
    registry: Metrics = request.app.state.metrics
    return Response(registry.render(), media_type=registry.content_type)
