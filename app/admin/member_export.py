"""The member export: every account as CSV, streamed a page at a time.

The columns are Ghost's members export, in Ghost's order, so the file imports into Ghost (and
back into Broadsheet) as it is; `role` and `disabled` follow, so staff and disabled accounts
are told apart. Broadsheet keeps no member notes, so `note` is empty; `tiers` holds the slugs
of the tiers the member has now (comma-separated, in display order, as Ghost writes its tiers).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.accounts.models import User
from app.admin import repository as admin
from app.admin.csvio import SafeWriter
from app.billing.repository import members as billing
from app.billing.repository import tier_members
from app.core.db import Database, as_utc, pk, utcnow
from app.newsletter import repository as newsletter

GHOST_COLUMNS = [
    "id",
    "email",
    "name",
    "note",
    "subscribed_to_emails",
    "complimentary_plan",
    "stripe_customer_id",
    "created_at",
    "deleted_at",
    "labels",
    "tiers",
]
COLUMNS = [*GHOST_COLUMNS, "role", "disabled"]
PAGE = 1000


@dataclass
class _Page:
    users: list[User]
    labels: dict[int, list[str]]
    customers: dict[int, str]
    comped: set[int]
    subscribed: set[int]
    tiers: dict[int, list[str]]


def ghost_time(value: datetime) -> str:
    """Format a timestamp the way Ghost writes it: 2024-03-05T10:11:12.000Z."""
    utc = as_utc(value)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _flag(value: bool) -> str:
    return "true" if value else "false"


async def _page(session: AsyncSession, after: int, grace: timedelta) -> _Page:
    users = await accounts.live_accounts_after(session, after, PAGE)
    ids, now = [pk(u.id) for u in users], utcnow()
    return _Page(
        users=users,
        labels=await admin.labels_of(session, ids),
        customers=await billing.customer_ids_of(session, ids),
        comped=await billing.comped_among(session, ids, now),
        subscribed=await newsletter.subscribed_users_among(session, ids),
        tiers=await tier_members.tiers_of(session, ids, now, grace),
    )


def _cells(page: _Page, user: User) -> list[str]:
    uid = pk(user.id)
    return [
        str(uid),
        user.email,
        user.display_name,
        "",
        _flag(uid in page.subscribed),
        _flag(uid in page.comped),
        page.customers.get(uid, ""),
        ghost_time(user.created_at),
        "",
        ",".join(sorted(page.labels.get(uid, []))),
        ",".join(page.tiers.get(uid, [])),
        user.role,
        _flag(user.disabled),
    ]


async def export_rows(db: Database, grace: timedelta) -> AsyncIterator[str]:
    """Yield the CSV a page of members at a time, so 100,000 members never sit in memory."""
    writer = SafeWriter()
    writer.row(COLUMNS)
    yield writer.take()
    last = 0
    while True:
        async with db.session(write=False) as session:
            page = await _page(session, last, grace)
        if not page.users:
            return
        for user in page.users:
            writer.row(_cells(page, user))
        last = pk(page.users[-1].id)
        yield writer.take()
