"""What one row of a member import changes, and the writes of a chunk's changes: new
accounts first (their ids are needed), then each owner's rows through its repository, with
rows nothing refers back to in one multi-row INSERT per table."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.accounts.models import Role, User
from app.admin import repository as admin
from app.admin.csvio import MemberRow
from app.admin.import_state import KnownSubscriber
from app.admin.models import AuditEntry
from app.billing.models import CompGrant
from app.billing.repository import members as billing
from app.core.db import pk
from app.newsletter import repository as newsletter
from app.newsletter.models import Newsletter, SubscriberStatus


@dataclass
class Change:
    """What one row changes; for a new member, everything it brings."""

    row: MemberRow
    uid: int | None  # None until a new member is written
    created: bool
    labels: list[str]
    customer: str | None
    # The comps to give, one per tier (None: every tier).
    comps: list[int | None]
    grants: list[CompGrant] = field(default_factory=list)
    new_subscriber: bool = False
    written: int | None = None  # the new subscriber's id, once written
    subscriber: KnownSubscriber | None = None
    link_user: bool = False
    follow: bool = False

    @property
    def changed(self) -> bool:
        """Tell whether the row changes anything of an existing member."""
        stated = (self.labels, self.customer, self.comps, self.new_subscriber, self.follow)
        return any(stated) or self.link_user


@dataclass
class _Rows:
    """A chunk's rows that nothing refers back to, per table."""

    labels: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    consents: list[dict[str, Any]] = field(default_factory=list)
    subscribers: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class ChunkWriter:
    """Writes the changes of one chunk at a time for one import."""

    session: AsyncSession
    actor: User
    newsletter: Newsletter | None
    now: datetime
    request_id: str | None

    async def write(self, changes: list[Change]) -> None:
        """Write these changes, and the audit entries of what they give existing members."""
        # Core INSERTs of plain rows: building ORM objects for a chunk of new members holds the
        # event loop several times longer than the statement itself.
        fresh = [c for c in changes if c.created]
        ids = await accounts.insert_users(self.session, [_user(c.row, self.now) for c in fresh])
        for change in fresh:
            change.uid = ids[change.row.email]
        rows = _Rows()
        for change in changes:
            await self._stage(change, pk(change.uid), rows)
        await self.session.flush()
        await self._subscribers(changes, rows.subscribers)
        await admin.insert_labels(self.session, rows.labels)
        await billing.insert_customers(self.session, rows.customers)
        await accounts.insert_consents(self.session, rows.consents)
        await newsletter.insert_subscriptions(self.session, self._follows(changes))
        await admin.add_entries(
            self.session, [e for c in changes if not c.created for e in self._entries(c)]
        )
        await self.session.flush()

    async def _subscribers(self, changes: list[Change], rows: list[dict[str, Any]]) -> None:
        ids = await newsletter.insert_subscribers(self.session, rows)
        for change in changes:
            if change.new_subscriber:
                change.written = ids[change.row.email]

    def _follows(self, changes: list[Change]) -> list[dict[str, Any]]:
        if self.newsletter is None:
            return []
        ids = [c.subscriber.id for c in changes if c.follow and c.subscriber is not None]
        ids += [c.written for c in changes if c.written is not None]
        return [
            {
                "subscriber_id": i,
                "newsletter_id": self.newsletter.id,
                "active": True,
                "subscribed_at": self.now,
            }
            for i in ids
        ]

    async def _stage(self, change: Change, uid: int, rows: _Rows) -> None:
        row = change.row
        rows.labels += [{"user_id": uid, "label": x} for x in change.labels]
        if change.customer:
            rows.customers.append(
                {"user_id": uid, "customer_id": change.customer, "created_at": self.now}
            )
        if change.created and row.subscribed:
            # The consent the source platform recorded travels with the member.
            rows.consents.append(_consent(uid, row, self.now))
        for tier_id in change.comps:
            grant = CompGrant(
                user_id=uid,
                granted_by_id=self.actor.id,
                reason=_reason(row),
                ends_at=row.comp_until,
                tier_id=tier_id,
            )
            change.grants.append(grant)
            await billing.add_grant(self.session, grant)
        if change.new_subscriber:
            rows.subscribers.append(_subscriber(uid, row, self.now))
        if change.subscriber is not None and change.link_user:
            await newsletter.link_subscriber(self.session, change.subscriber.id, uid)

    def _entries(self, change: Change) -> list[AuditEntry]:
        # New members are summarised by the import's own entry; what it gives an existing one
        # (paid access, a payment customer, labels) is logged one by one.
        uid = pk(change.uid)
        found: list[tuple[str, str, dict[str, Any]]] = []
        for grant in change.grants:
            found.append(("comp_grant", str(pk(grant.id)), _grant_fields(grant)))
        if change.customer:
            found.append(
                ("billing_customer", str(uid), {"user_id": uid, "customer_id": change.customer})
            )
        for label in change.labels:
            # The entry's entity_id holds 64 characters; the label is whole in `after`.
            key = f"{uid},{label}"[:64]
            found.append(("member_label", key, {"user_id": uid, "label": label}))
        return [
            AuditEntry(
                actor_id=self.actor.id,
                action="create",
                entity=entity,
                entity_id=entity_id,
                after=after,
                request_id=self.request_id,
            )
            for entity, entity_id, after in found
        ]


def _user(row: MemberRow, now: datetime) -> dict[str, Any]:
    return {
        "email": row.email,
        "display_name": row.name,
        "role": Role.reader.value,
        "email_verified": False,
        "disabled": False,
        "created_at": row.created_at or now,
    }


def _reason(row: MemberRow) -> str:
    if row.comp_until is None:
        return "imported"
    return f"imported: paid at previous platform until {row.comp_until.date().isoformat()}"


def _grant_fields(grant: CompGrant) -> dict[str, Any]:
    fields = grant.model_dump(exclude={"starts_at", "ends_at"})
    ends = grant.ends_at.isoformat() if grant.ends_at else None
    return {**fields, "starts_at": grant.starts_at.isoformat(), "ends_at": ends}


def _consent(uid: int, row: MemberRow, now: datetime) -> dict[str, Any]:
    return {
        "user_id": uid,
        "email": row.email,
        "document": "terms",
        "version": "imported",
        "accepted_at": row.created_at or now,
        "ip": None,
        "source": "import",
    }


def _subscriber(uid: int, row: MemberRow, now: datetime) -> dict[str, Any]:
    return {
        "email": row.email,
        "user_id": uid,
        "status": SubscriberStatus.active.value,
        "source": "import",
        "created_at": now,
        "confirmed_at": row.created_at or now,
    }
