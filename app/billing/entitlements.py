"""Reader access levels: the one place that says what a reader may read."""

from __future__ import annotations

from enum import IntEnum

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import STAFF_ROLES, User


class AccessLevel(IntEnum):
    anonymous = 0
    member = 1
    paid = 2

    @property
    def label(self) -> str:
        return self.name


async def access_level(session: AsyncSession, user: User | None) -> AccessLevel:  # noqa: ARG001
    """Give back the reader's access level; staff read everything."""
    if user is None:
        return AccessLevel.anonymous
    if user.role in STAFF_ROLES:
        return AccessLevel.paid
    return AccessLevel.member
