"""Statements on accounts that other domains reach through (names, lookups by id)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.core.db import pk


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    """The account with this id, deleted ones included."""
    return await session.get(User, user_id)


async def display_names(session: AsyncSession, ids: Iterable[int]) -> dict[int, str]:
    """Each account's display name by id, as stored."""
    rows = await session.exec(select(User.id, User.display_name).where(col(User.id).in_(list(ids))))
    return {pk(i): name for i, name in rows}
