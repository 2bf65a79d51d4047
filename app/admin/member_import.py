"""Member import: the file's valid rows (see csvio) planned and applied a chunk at a time.

Each chunk costs a few bounded queries (import_state: the chunk's users, their labels,
customers, comps and newsletter rows), so a 20 MB file of 200,000 rows never loads a whole
table; the file itself is read a row at a time from the spooled upload. A dry run plans every
chunk exactly as a real run would and writes nothing (import_writes holds the writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import BinaryIO

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.admin import audit
from app.admin import repository as admin
from app.admin.csvio import ImportReport, MemberRow, csv_text, member_chunks, read_table
from app.admin.import_state import ChunkState, load_state
from app.admin.import_writes import Change, ChunkWriter
from app.admin.models import AuditEntry
from app.billing import repository as billing
from app.billing.models import Tier
from app.core.db import pk, utcnow
from app.newsletter.models import Newsletter, SubscriberStatus

# A reader who bounced or left here is not signed up again by a file from elsewhere.
HANDS_OFF = frozenset({SubscriberStatus.bounced.value, SubscriberStatus.unsubscribed.value})
# Rows written per chunk (each chunk costs a fixed number of statements), and rows parsed
# between two turns of the event loop: checking an address is ~0.1 ms, so a whole chunk
# parsed at once would hold every reader of the process for tens of milliseconds.
CHUNK_ROWS = 500
PARSE_SLICE = 50


class _Apply:
    """Plans and (unless a dry run) writes one chunk at a time, keeping what spans chunks."""

    def __init__(
        self, writer: ChunkWriter, report: ImportReport, tiers: TierNames, grace: timedelta
    ) -> None:
        self.writer, self.report, self.tiers, self.grace = writer, report, tiers, grace
        self.session, self.newsletter, self.now = writer.session, writer.newsletter, writer.now
        # Customer ids this import links, for a dry run, whose earlier chunks are not written.
        self.claimed: set[str] = set()

    async def chunk(self, rows: list[MemberRow]) -> None:
        """Apply one chunk of valid rows and count the outcome of each."""
        state = await load_state(self.session, rows, self.newsletter, self.now, self.grace)
        changes = [c for c in (self._plan(row, state) for row in rows) if c is not None]
        if not self.report.dry_run:
            await self.writer.write(changes)
        for change in changes:
            if change.created:
                self.report.created += 1
            elif change.changed:
                self.report.updated += 1
            else:
                self.report.unchanged += 1
            self.report.comped += len(change.comps)

    def _customer(self, row: MemberRow, uid: int | None, state: ChunkState) -> str | None:
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

    def _comps(self, row: MemberRow, uid: int | None, state: ChunkState) -> list[int | None]:
        wanted = [
            tier
            for tier in self.tiers.comp_tiers(row)
            if not state.covered(uid, None if tier is None else pk(tier.id), row.comp_until)
        ]
        # Only a comp still to be given is refused for an archived tier: a member who holds
        # it already (an export read back) is left as is.
        for tier in wanted:
            if tier is not None and not tier.active:
                raise ValueError(f"the tier {tier.slug!r} is archived")
        return [None if tier is None else pk(tier.id) for tier in wanted]

    def _plan(self, row: MemberRow, state: ChunkState) -> Change | None:
        uid = state.users.get(row.email)
        try:
            if uid in state.deleted:
                raise ValueError("the address belongs to a deleted account")
            customer = self._customer(row, uid, state)
            comps = self._comps(row, uid, state)
        except ValueError as exc:
            self.report.error(row.number, row.email, str(exc))
            return None
        change = Change(
            row=row,
            uid=uid,
            created=uid is None,
            labels=[x for x in row.labels if uid is None or (uid, x) not in state.labels],
            customer=customer,
            comps=comps,
        )
        if self.newsletter is not None and row.subscribed:
            self._plan_subscriber(change, uid, state)
        return change

    def _plan_subscriber(self, change: Change, uid: int | None, state: ChunkState) -> None:
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


class TierNames:
    """The tiers an import's cells can name: by slug, or by name as Ghost writes them."""

    def __init__(self, tiers: Sequence[Tier]) -> None:
        self.found: dict[str, Tier] = {t.name.casefold(): t for t in tiers}
        self.found.update({t.slug: t for t in tiers})

    def comp_tiers(self, row: MemberRow) -> list[Tier | None]:
        """The tiers of the row's comps (None: one comp of every tier); ValueError for a
        name that is no tier."""
        if not row.comp:
            return []
        if not row.comp_tiers:
            return [None]
        out: dict[int, Tier] = {}
        for named in row.comp_tiers:
            tier = self.found.get(named) or self.found.get(named.casefold())
            if tier is None:
                raise ValueError(f"no tier is called {named!r}")
            out[pk(tier.id)] = tier
        return list(out.values())


async def paced_chunks(slices: Iterable[list[MemberRow]]) -> AsyncIterator[list[MemberRow]]:
    """The parsed rows in chunks of CHUNK_ROWS, letting the event loop run after each slice."""
    chunk: list[MemberRow] = []
    for piece in slices:
        chunk += piece
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
        await asyncio.sleep(0)
    if chunk:
        yield chunk


@contextmanager
def _session_audit_off(session: AsyncSession) -> Iterator[None]:
    # Off while the import writes: the session's own audit would log every row of every new
    # member; the import logs what matters itself.
    info = session.sync_session.info
    saved_actor = info.get(audit.ACTOR_KEY)
    info[audit.ACTOR_KEY] = None
    try:
        yield
    finally:
        info[audit.ACTOR_KEY] = saved_actor


def _summary_entry(actor: User, report: ImportReport, request_id: str | None) -> AuditEntry:
    return AuditEntry(
        actor_id=actor.id,
        action="import",
        entity="user",
        entity_id="*",
        after=report.summary(),
        request_id=request_id,
    )


async def import_csv(
    session: AsyncSession,
    body: BinaryIO,
    *,
    actor: User,
    dry_run: bool,
    default_newsletter: Newsletter | None,
    grace: timedelta,
) -> ImportReport:
    """Create or update members from a UTF-8 CSV file. Bad rows are reported with their row
    numbers and skipped without aborting the rest; an existing email is never duplicated; a
    re-import of the same file changes nothing. New members are summarised in one audit
    entry; comps, customers and labels the import gives existing members get an entry each.
    A comped row gets a comp of each tier it names (one of every tier when it names none);
    a tier already held (by a comp, or by paying for it) is not given again."""
    report, now = ImportReport(dry_run=dry_run), utcnow()
    request_id: str | None = session.sync_session.info.get(audit.REQUEST_KEY)
    with csv_text(body) as text:
        slices = member_chunks(read_table(text), report, now, size=PARSE_SLICE)
        await admin.plan_each_statement(session)
        writer = ChunkWriter(session, actor, default_newsletter, now, request_id)
        with _session_audit_off(session):
            tiers = TierNames(await billing.all_tiers(session))
            apply = _Apply(writer, report, tiers, grace)
            async for chunk in paced_chunks(slices):
                await apply.chunk(chunk)
    report.errors.sort(key=lambda e: int(e["row"]))
    if not dry_run:
        await admin.add_entries(session, [_summary_entry(actor, report, request_id)])
    return report
