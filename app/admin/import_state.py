"""What the database holds for one chunk of a member import: the chunk's accounts, their
labels, payment customers, running comps, paid tiers and newsletter rows, a few bounded
queries each, asked of the domains that own those tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.admin import repository as admin
from app.admin.csvio import MemberRow
from app.billing.repository import members as billing
from app.billing.repository import tier_members
from app.core.db import pk
from app.newsletter import repository as newsletter
from app.newsletter.models import Newsletter


@dataclass(frozen=True, slots=True)
class KnownSubscriber:
    """The parts of a subscriber row the import looks at."""

    id: int
    email: str
    user_id: int | None
    status: str


@dataclass
class ChunkState:
    """What the database holds for one chunk's rows."""

    users: dict[str, int]
    deleted: set[int] = field(default_factory=set)
    labels: set[tuple[int, str]] = field(default_factory=set)
    customer_of: dict[int, str] = field(default_factory=dict)
    owner_of: dict[str, int] = field(default_factory=dict)
    # The (tier, end) of each running comp (no tier: every tier), and the tiers paid for now.
    comp_ends: dict[int, list[tuple[int | None, datetime | None]]] = field(default_factory=dict)
    paid_tiers: dict[int, set[int]] = field(default_factory=dict)
    by_email: dict[str, KnownSubscriber] = field(default_factory=dict)
    by_user: dict[int, KnownSubscriber] = field(default_factory=dict)
    following: set[int] = field(default_factory=set)

    def covered(self, uid: int | None, tier_id: int | None, until: datetime | None) -> bool:
        """Tell whether the member already has this tier (None: every tier) until `until`: by
        a running comp of it or of every tier, or, for one tier, by paying for it now (a comp
        would outlive the subscription it duplicates)."""
        if uid is None:
            return False
        if tier_id is not None and tier_id in self.paid_tiers.get(uid, set()):
            return True
        return any(
            (held is None or held == tier_id)
            and (end is None or (until is not None and end >= until))
            for held, end in self.comp_ends.get(uid, [])
        )


async def load_state(
    session: AsyncSession,
    rows: Sequence[MemberRow],
    newsletter_row: Newsletter | None,
    now: datetime,
    grace: timedelta,
) -> ChunkState:
    """Read what the database holds for these rows."""
    emails = [r.email for r in rows]
    state = ChunkState(users={})
    for uid, email, deleted_at in await accounts.accounts_by_email(session, emails):
        state.users[email] = pk(uid)
        if deleted_at is not None:
            state.deleted.add(pk(uid))
    uids = list(state.users.values())
    state.labels = await admin.label_pairs(session, uids)
    customers = [r.customer for r in rows if r.customer]
    for uid, customer in await billing.customers_matching(session, uids, customers):
        state.customer_of[uid] = customer
        state.owner_of[customer] = uid
    for uid, tier_id, ends in await billing.running_comp_ends(session, uids, now):
        state.comp_ends.setdefault(uid, []).append((tier_id, ends))
    for uid, tier_id in await tier_members.paid_tiers_among(session, uids, now, grace):
        state.paid_tiers.setdefault(uid, set()).add(tier_id)
    if newsletter_row is not None:
        await _load_subscribers(session, state, emails, uids, pk(newsletter_row.id))
    return state


async def _load_subscribers(
    session: AsyncSession, state: ChunkState, emails: list[str], uids: list[int], list_id: int
) -> None:
    wanted = set(emails)
    for sid, email, user_id, status in await newsletter.subscribers_matching(session, emails, uids):
        sub = KnownSubscriber(pk(sid), email, user_id, status)
        if sub.email in wanted:
            state.by_email[sub.email] = sub
        if sub.user_id is not None:
            state.by_user[sub.user_id] = sub
    ids = list({s.id for s in [*state.by_email.values(), *state.by_user.values()]})
    state.following = await newsletter.following(session, ids, list_id)
