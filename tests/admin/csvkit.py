"""Helpers for the member CSV tests: post a body to the import, read fixtures and comps."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlmodel import col, select

from app.accounts.models import User
from app.billing.models import CompGrant, Tier
from app.core.db import Database

DATA = Path(__file__).parent / "data"
IMPORT = "/api/v1/admin/members/import"


def fixture(name: str) -> bytes:
    """The bytes of a CSV fixture, exactly as the tool wrote them."""
    return (DATA / name).read_bytes()


async def post_csv(
    client: AsyncClient, headers: dict[str, str], body: bytes | str, query: str = ""
) -> Response:
    """POST `body` to the member import with `query` (e.g. "?dry_run=true")."""
    content = body.encode() if isinstance(body, str) else body
    return await client.post(
        IMPORT + query, content=content, headers={**headers, "Content-Type": "text/csv"}
    )


@dataclass
class Comp:
    email: str
    reason: str
    ends_at: datetime | None
    granted_by_id: int | None


async def comps(app: FastAPI) -> dict[str, Comp]:
    """Every unrevoked complimentary grant, by the member's email."""
    db: Database = app.state.db
    async with db.session(write=False) as session:
        rows = await session.exec(
            select(User.email, CompGrant.reason, CompGrant.ends_at, CompGrant.granted_by_id)
            .join(User, col(User.id) == CompGrant.user_id)
            .where(col(CompGrant.revoked_at).is_(None))
        )
        return {email: Comp(email, reason, ends, by) for email, reason, ends, by in rows.all()}


async def comp_tiers(app: FastAPI) -> dict[str, list[str | None]]:
    """The tier slug (None: every tier) of each unrevoked comp, by the member's email."""
    db: Database = app.state.db
    async with db.session(write=False) as session:
        rows = await session.exec(
            select(User.email, Tier.slug)
            .select_from(CompGrant)
            .join(User, col(User.id) == CompGrant.user_id)
            .outerjoin(Tier, col(Tier.id) == CompGrant.tier_id)
            .where(col(CompGrant.revoked_at).is_(None))
            .order_by(col(CompGrant.id))
        )
        out: dict[str, list[str | None]] = {}
        for email, slug in rows.all():
            out.setdefault(email, []).append(slug)
        return out
