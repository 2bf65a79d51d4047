"""Member import: the file's valid rows (see csvio) applied a chunk at a time.

Each chunk costs a few bounded queries (the chunk's users, their labels, customers, comps and
newsletter rows), so a 20 MB file of 200,000 rows never loads a whole table. A dry run plans
every chunk exactly as a real run would and writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import insert, or_, update
from sqlalchemy import text as sql
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import Consent, User
from app.admin import audit
from app.admin.csvio import ImportReport, MemberRow, member_chunks, read_table
from app.admin.models import AuditEntry, MemberLabel
from app.billing.models import BillingCustomer, CompGrant
from app.core.db import pk, utcnow
from app.newsletter.models import Newsletter, NewsletterSubscription, Subscriber, SubscriberStatus

# A reader who bounced or left here is not signed up again by a file from elsewhere.
HANDS_OFF = frozenset({SubscriberStatus.bounced.value, SubscriberStatus.unsubscribed.value})


@dataclass(frozen=True, slots=True)
class _Sub:
    """The parts of a subscriber row the import looks at."""

    id: int
    email: str
    user_id: int | None
    status: str


@dataclass
class _State:
    """What the database holds for one chunk's rows."""

    users: dict[str, int]
    deleted: set[int] = field(default_factory=set)
    labels: set[tuple[int, str]] = field(default_factory=set)
    customer_of: dict[int, str] = field(default_factory=dict)
    owner_of: dict[str, int] = field(default_factory=dict)
    comp_ends: dict[int, list[datetime | None]] = field(default_factory=dict)
    by_email: dict[str, _Sub] = field(default_factory=dict)
    by_user: dict[int, _Sub] = field(default_factory=dict)
    following: set[int] = field(default_factory=set)

    def covered(self, uid: int | None, until: datetime | None) -> bool:
        """Tell whether a running comp already gives the member access until `until`."""
        ends = self.comp_ends.get(uid, []) if uid is not None else []
        return any(end is None or (until is not None and end >= until) for end in ends)


async def _load(
    session: AsyncSession, rows: Sequence[MemberRow], newsletter: Newsletter | None, now: datetime
) -> _State:
    emails = [r.email for r in rows]
    found = await session.exec(
        select(User.id, User.email, User.deleted_at).where(col(User.email).in_(emails))
    )
    state = _State(users={})
    for uid, email, deleted_at in found:
        state.users[email] = pk(uid)
        if deleted_at is not None:
            state.deleted.add(pk(uid))
    uids = list(state.users.values())
    labels = select(MemberLabel.user_id, MemberLabel.label).where(
        col(MemberLabel.user_id).in_(uids)
    )
    state.labels = set((await session.exec(labels)).all())
    customers = select(BillingCustomer.user_id, BillingCustomer.customer_id).where(
        or_(
            col(BillingCustomer.user_id).in_(uids),
            col(BillingCustomer.customer_id).in_([r.customer for r in rows if r.customer]),
        )
    )
    for uid, customer in await session.exec(customers):
        state.customer_of[uid] = customer
        state.owner_of[customer] = uid
    comps = select(CompGrant.user_id, CompGrant.ends_at).where(
        col(CompGrant.user_id).in_(uids),
        col(CompGrant.revoked_at).is_(None),
        or_(col(CompGrant.ends_at).is_(None), col(CompGrant.ends_at) > now),
    )
    for uid, ends in await session.exec(comps):
        state.comp_ends.setdefault(uid, []).append(ends)
    if newsletter is not None:
        await _load_subscribers(session, state, emails, uids, pk(newsletter.id))
    return state


async def _load_subscribers(
    session: AsyncSession, state: _State, emails: list[str], uids: list[int], newsletter_id: int
) -> None:
    wanted = set(emails)
    found = await session.exec(
        select(Subscriber.id, Subscriber.email, Subscriber.user_id, Subscriber.status).where(
            or_(col(Subscriber.email).in_(emails), col(Subscriber.user_id).in_(uids))
        )
    )
    for sid, email, user_id, status in found:
        sub = _Sub(pk(sid), email, user_id, status)
        if sub.email in wanted:
            state.by_email[sub.email] = sub
        if sub.user_id is not None:
            state.by_user[sub.user_id] = sub
    ids = list({s.id for s in [*state.by_email.values(), *state.by_user.values()]})
    state.following = set(
        (
            await session.exec(
                select(NewsletterSubscription.subscriber_id).where(
                    col(NewsletterSubscription.subscriber_id).in_(ids),
                    NewsletterSubscription.newsletter_id == newsletter_id,
                )
            )
        ).all()
    )


@dataclass
class _Change:
    """What one row changes; for a new member, everything it brings."""

    row: MemberRow
    uid: int | None  # None until a new member is written
    created: bool
    labels: list[str]
    customer: str | None
    comp: bool
    grant: CompGrant | None = None
    new_subscriber: bool = False
    written: Subscriber | None = None  # the new subscriber row, once staged
    subscriber: _Sub | None = None
    link_user: bool = False
    follow: bool = False

    @property
    def changed(self) -> bool:
        stated = (self.labels, self.customer, self.comp, self.new_subscriber, self.follow)
        return any(stated) or self.link_user


class _Apply:
    """Plans and (unless a dry run) writes one chunk at a time, keeping what spans chunks."""

    def __init__(
        self,
        session: AsyncSession,
        report: ImportReport,
        *,
        actor: User,
        newsletter: Newsletter | None,
        now: datetime,
    ) -> None:
        self.session, self.report, self.actor = session, report, actor
        self.newsletter, self.now = newsletter, now
        self.request_id: str | None = session.sync_session.info.get(audit.REQUEST_KEY)
        # Customer ids this import links, for a dry run, whose earlier chunks are not written.
        self.claimed: set[str] = set()

    async def chunk(self, rows: list[MemberRow]) -> None:
        """Apply one chunk of valid rows and count the outcome of each."""
        state = await _load(self.session, rows, self.newsletter, self.now)
        changes = [c for c in (self._plan(row, state) for row in rows) if c is not None]
        if not self.report.dry_run:
            await self._write(changes)
        for change in changes:
            if change.created:
                self.report.created += 1
            elif change.changed:
                self.report.updated += 1
            else:
                self.report.unchanged += 1
            self.report.comped += change.comp

    def _customer(self, row: MemberRow, uid: int | None, state: _State) -> str | None:
        if not row.customer:
            return None
        owner = state.owner_of.get(row.customer)
        have = state.customer_of.get(uid) if uid is not None else None
        if (owner is not None and owner != uid) or (owner is None and row.customer in self.claimed):
            raise ValueError(f"stripe_customer_id {row.customer} belongs to another member")
        if have is not None and have != row.customer:
            raise ValueError(f"the member already has stripe_customer_id {have}")
        if have is not None:
            return None
        self.claimed.add(row.customer)
        return row.customer

    def _plan(self, row: MemberRow, state: _State) -> _Change | None:
        uid = state.users.get(row.email)
        try:
            if uid in state.deleted:
                raise ValueError("the address belongs to a deleted account")
            customer = self._customer(row, uid, state)
        except ValueError as exc:
            self.report.error(row.number, row.email, str(exc))
            return None
        change = _Change(
            row=row,
            uid=uid,
            created=uid is None,
            labels=[x for x in row.labels if uid is None or (uid, x) not in state.labels],
            customer=customer,
            comp=row.comp and not state.covered(uid, row.comp_until),
        )
        if self.newsletter is not None and row.subscribed:
            self._plan_subscriber(change, uid, state)
        return change

    def _plan_subscriber(self, change: _Change, uid: int | None, state: _State) -> None:
        sub = state.by_email.get(change.row.email)
        if sub is None and uid is not None:
            sub = state.by_user.get(uid)
        if sub is None:
            change.new_subscriber = True
            return
        if sub.status in HANDS_OFF:
            return
        change.subscriber = sub
        # An email-only reader who now has an account gets the two joined, as at sign-up.
        change.link_user = sub.user_id is None and (uid is None or uid not in state.by_user)
        change.follow = sub.id not in state.following
        state.following.add(sub.id)
        if change.link_user and uid is not None:
            state.by_user[uid] = sub

    async def _write(self, changes: list[_Change]) -> None:
        fresh = [(c, _user(c.row, self.now)) for c in changes if c.created]
        self.session.add_all([user for _, user in fresh])
        await self.session.flush()
        for change, user in fresh:
            change.uid = pk(user.id)
        rows: dict[type[SQLModel], list[dict[str, Any]]] = defaultdict(list)
        for change in changes:
            await self._stage(change, pk(change.uid), rows)
        await self.session.flush()
        if self.newsletter is not None:
            ids = [c.subscriber.id for c in changes if c.follow and c.subscriber is not None]
            ids += [pk(c.written.id) for c in changes if c.written is not None]
            rows[NewsletterSubscription] = [
                {
                    "subscriber_id": i,
                    "newsletter_id": self.newsletter.id,
                    "active": True,
                    "subscribed_at": self.now,
                }
                for i in ids
            ]
        # Rows nothing refers back to go in one multi-row INSERT per table, without the ORM.
        for model, values in rows.items():
            if values:
                await self.session.exec(insert(model), params=values)
        self.session.add_all([e for c in changes if not c.created for e in self._entries(c)])
        await self.session.flush()

    async def _stage(
        self, change: _Change, uid: int, rows: dict[type[SQLModel], list[dict[str, Any]]]
    ) -> None:
        row = change.row
        rows[MemberLabel] += [{"user_id": uid, "label": x} for x in change.labels]
        if change.customer:
            customer = {"user_id": uid, "customer_id": change.customer, "created_at": self.now}
            rows[BillingCustomer].append(customer)
        if change.created and row.subscribed:
            # The consent the source platform recorded travels with the member.
            rows[Consent].append(_consent(uid, row, self.now))
        if change.comp:
            change.grant = CompGrant(
                user_id=uid,
                granted_by_id=self.actor.id,
                reason=_reason(row),
                ends_at=row.comp_until,
            )
            self.session.add(change.grant)
        if change.new_subscriber:
            change.written = _subscriber(uid, row, self.now)
            self.session.add(change.written)
        if change.subscriber is not None and change.link_user:
            link = update(Subscriber).where(col(Subscriber.id) == change.subscriber.id)
            await self.session.exec(link.values(user_id=uid))

    def _entries(self, change: _Change) -> list[AuditEntry]:
        # New members are summarised by the import's own entry; what it gives an existing one
        # (paid access, a payment customer, labels) is logged one by one.
        uid = pk(change.uid)
        found: list[tuple[str, str, dict[str, Any]]] = []
        if change.grant is not None:
            found.append(("comp_grant", str(pk(change.grant.id)), _grant_fields(change.grant)))
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


def _user(row: MemberRow, now: datetime) -> User:
    return User(email=row.email, display_name=row.name, created_at=row.created_at or now)


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


def _subscriber(uid: int, row: MemberRow, now: datetime) -> Subscriber:
    return Subscriber(
        email=row.email,
        user_id=uid,
        status=SubscriberStatus.active.value,
        confirmed_at=row.created_at or now,
        source="import",
    )


async def import_csv(
    session: AsyncSession,
    text: str,
    *,
    actor: User,
    dry_run: bool,
    default_newsletter: Newsletter | None,
) -> ImportReport:
    """Create or update members from CSV. Bad rows are reported with their row numbers and
    skipped without aborting the rest; an existing email is never duplicated; a re-import of
    the same file changes nothing. New members are summarised in one audit entry; comps,
    customers and labels the import gives existing members get an entry each."""
    report = ImportReport(dry_run=dry_run)
    now = utcnow()
    chunks = member_chunks(read_table(text), report, now)
    if session.get_bind().dialect.name == "postgresql":
        # The import grows the tables it looks up inside one transaction, whose statistics
        # still describe them as they were; a generic plan cached early then scans the whole
        # table for every chunk (2 s a lookup at 100,000 rows). Plan each with its values.
        connection = await session.connection()
        await connection.execute(sql("SET LOCAL plan_cache_mode = force_custom_plan"))
    info = session.sync_session.info
    saved_actor = info.get(audit.ACTOR_KEY)
    # Off while the import writes: the session's own audit would log every row of every new
    # member; _Apply logs what matters itself.
    info[audit.ACTOR_KEY] = None
    try:
        apply = _Apply(session, report, actor=actor, newsletter=default_newsletter, now=now)
        for chunk in chunks:
            await apply.chunk(chunk)
    finally:
        info[audit.ACTOR_KEY] = saved_actor
    report.errors.sort(key=lambda e: int(e["row"]))
    if not dry_run:
        session.add(
            AuditEntry(
                actor_id=actor.id,
                action="import",
                entity="user",
                entity_id="*",
                after=report.summary(),
                request_id=info.get(audit.REQUEST_KEY),
            )
        )
    return report
