"""Member CSV export (streamed) and import (validated row by row, with a dry run).

Columns follow Ghost's member export, which Substack exports map onto: email, name, note,
subscribed_to_emails, labels, created_at, complimentary_plan, stripe_customer_id.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.emailaddr import normalise_email
from app.accounts.models import Consent, User
from app.admin import audit
from app.admin.models import AuditEntry, MemberLabel
from app.billing.models import BillingCustomer, CompGrant
from app.core.db import Database, as_utc, pk, utcnow
from app.newsletter.models import Newsletter, NewsletterSubscription, Subscriber

COLUMNS = [
    "id",
    "email",
    "name",
    "note",
    "subscribed_to_emails",
    "labels",
    "created_at",
    "complimentary_plan",
    "stripe_customer_id",
]
TRUE = {"true", "yes", "1", "y", "t", "subscribed"}
FALSE = {"false", "no", "0", "n", "f", "", "unsubscribed"}
PAGE = 1000


async def export_rows(db: Database) -> AsyncIterator[str]:
    """Yield the CSV a page of members at a time, so 100,000 members never sit in memory."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    yield out.getvalue()
    last = 0
    while True:
        out.seek(0)
        out.truncate()
        async with db.session(write=False) as session:
            users = (
                await session.exec(
                    select(User)
                    .where(col(User.id) > last, col(User.deleted_at).is_(None))
                    .order_by(col(User.id))
                    .limit(PAGE)
                )
            ).all()
            if not users:
                return
            ids = [pk(u.id) for u in users]
            labels: dict[int, list[str]] = {}
            for user_id, label in await session.exec(
                select(MemberLabel.user_id, MemberLabel.label).where(
                    col(MemberLabel.user_id).in_(ids)
                )
            ):
                labels.setdefault(user_id, []).append(label)
            customers = dict(
                (
                    await session.exec(
                        select(BillingCustomer.user_id, BillingCustomer.customer_id).where(
                            col(BillingCustomer.user_id).in_(ids)
                        )
                    )
                ).all()
            )
            now = utcnow()
            comped = {
                uid
                for uid, ends, revoked in await session.exec(
                    select(CompGrant.user_id, CompGrant.ends_at, CompGrant.revoked_at).where(
                        col(CompGrant.user_id).in_(ids)
                    )
                )
                if revoked is None and (ends is None or ends > now)
            }
            subscribed = set(
                (
                    await session.exec(
                        select(Subscriber.user_id)
                        .join(
                            NewsletterSubscription,
                            col(NewsletterSubscription.subscriber_id) == Subscriber.id,
                        )
                        .where(
                            col(Subscriber.user_id).in_(ids),
                            col(NewsletterSubscription.active).is_(True),
                            Subscriber.status == "active",
                        )
                    )
                ).all()
            )
        for user in users:
            uid = pk(user.id)
            writer.writerow(
                [
                    uid,
                    user.email,
                    user.display_name,
                    "",
                    "true" if uid in subscribed else "false",
                    ",".join(sorted(labels.get(uid, []))),
                    user.created_at.isoformat(),
                    "complimentary" if uid in comped else "",
                    customers.get(uid, ""),
                ]
            )
        last = pk(users[-1].id)
        yield out.getvalue()


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(f"subscribed_to_emails must be true or false, not {value!r}")


def _date(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        return as_utc(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    except ValueError as exc:
        raise ValueError(f"created_at is not an ISO date: {value!r}") from exc


@dataclass
class _Row:
    number: int
    email: str
    name: str
    labels: list[str]
    customer: str
    created_at: datetime | None
    subscribed: bool
    comped: bool


def _parse(text: str, report: ImportReport) -> list[_Row]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in [f.strip().lower() for f in reader.fieldnames]:
        report.errors.append({"row": 1, "reason": "the header has no email column"})
        return []
    rows: list[_Row] = []
    seen: set[str] = set()
    for number, raw in enumerate(reader, start=2):
        report.rows += 1
        row = {(k or "").strip().lower(): (v or "") for k, v in raw.items()}
        try:
            email = normalise_email(row.get("email", ""))
            if email in seen:
                raise ValueError("the email appears twice in this file")
            customer = row.get("stripe_customer_id", "").strip()
            if customer and not customer.startswith("cus_"):
                raise ValueError("stripe_customer_id must look like cus_...")
            parsed = _Row(
                number=number,
                email=email,
                name=row.get("name", "").strip()[:120],
                labels=[x.strip()[:100] for x in row.get("labels", "").split(",") if x.strip()],
                customer=customer,
                created_at=_date(row.get("created_at", "")),
                subscribed=_bool(row.get("subscribed_to_emails", row.get("subscribed", ""))),
                comped=bool(row.get("complimentary_plan", "").strip()),
            )
        except ValueError as exc:
            report.errors.append({"row": number, "email": row.get("email", ""), "reason": str(exc)})
            continue
        seen.add(email)
        rows.append(parsed)
    return rows


async def _by_email(session: AsyncSession, emails: list[str]) -> dict[str, User]:
    found: dict[str, User] = {}
    for start in range(0, len(emails), 500):
        chunk = emails[start : start + 500]
        for user in (await session.exec(select(User).where(col(User.email).in_(chunk)))).all():
            found[user.email] = user
    return found


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
    the same file changes nothing. The import is one audit entry, not one per row."""
    report = ImportReport(dry_run=dry_run)
    rows = _parse(text, report)
    existing = await _by_email(session, [r.email for r in rows])
    if dry_run:
        report.created = sum(1 for r in rows if r.email not in existing)
        report.unchanged = len(rows) - report.created
        return report
    actor_key = audit.ACTOR_KEY
    info = session.sync_session.info
    saved_actor = info.get(actor_key)
    info[actor_key] = None
    try:
        await _apply_all(
            session, rows, existing, actor=actor, newsletter=default_newsletter, report=report
        )
    finally:
        info[actor_key] = saved_actor
    session.add(
        AuditEntry(
            actor_id=actor.id,
            action="import",
            entity="user",
            entity_id="*",
            after={
                "created": report.created,
                "updated": report.updated,
                "errors": len(report.errors),
            },
            request_id=info.get(audit.REQUEST_KEY),
        )
    )
    return report


async def _apply_all(
    session: AsyncSession,
    rows: list[_Row],
    existing: dict[str, User],
    *,
    actor: User,
    newsletter: Newsletter | None,
    report: ImportReport,
) -> None:
    new_users = [
        User(email=r.email, display_name=r.name, created_at=r.created_at or utcnow())
        for r in rows
        if r.email not in existing
    ]
    for start in range(0, len(new_users), PAGE):
        session.add_all(new_users[start : start + PAGE])
        await session.flush()
    created = {u.email for u in new_users}
    users = {**existing, **{u.email: u for u in new_users}}
    ids = [pk(u.id) for u in users.values()]
    labels: set[tuple[int, str]] = set()
    customers: set[int] = set()
    comps: set[int] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        labels |= set(
            (
                await session.exec(
                    select(MemberLabel.user_id, MemberLabel.label).where(
                        col(MemberLabel.user_id).in_(chunk)
                    )
                )
            ).all()
        )
        customers |= set(
            (
                await session.exec(
                    select(BillingCustomer.user_id).where(col(BillingCustomer.user_id).in_(chunk))
                )
            ).all()
        )
        comps |= set(
            (
                await session.exec(
                    select(CompGrant.user_id).where(
                        col(CompGrant.user_id).in_(chunk), col(CompGrant.revoked_at).is_(None)
                    )
                )
            ).all()
        )
    taken_customers = set((await session.exec(select(BillingCustomer.customer_id))).all())
    subscribers = set((await session.exec(select(Subscriber.email))).all())
    new_subscribers: list[Subscriber] = []
    for row in rows:
        user = users[row.email]
        uid = pk(user.id)
        changed = row.email in created
        for label in row.labels:
            if (uid, label) not in labels:
                session.add(MemberLabel(user_id=uid, label=label))
                labels.add((uid, label))
                changed = True
        if row.customer and uid not in customers and row.customer not in taken_customers:
            session.add(BillingCustomer(user_id=uid, customer_id=row.customer))
            customers.add(uid)
            taken_customers.add(row.customer)
            changed = True
        if row.comped and uid not in comps:
            session.add(CompGrant(user_id=uid, granted_by_id=actor.id, reason="imported"))
            comps.add(uid)
            changed = True
        if row.email in created and row.subscribed:
            # The consent the source platform recorded travels with the member.
            session.add(
                Consent(
                    user_id=uid,
                    email=row.email,
                    document="terms",
                    version="imported",
                    accepted_at=row.created_at or utcnow(),
                    source="import",
                )
            )
        if row.subscribed and newsletter is not None and row.email not in subscribers:
            new_subscribers.append(
                Subscriber(
                    email=row.email,
                    user_id=uid,
                    status="active",
                    confirmed_at=row.created_at or utcnow(),
                    source="import",
                )
            )
            subscribers.add(row.email)
            changed = True
        if row.email in created:
            report.created += 1
        elif changed:
            report.updated += 1
        else:
            report.unchanged += 1
    session.add_all(new_subscribers)
    await session.flush()
    if newsletter is not None:
        session.add_all(
            [
                NewsletterSubscription(subscriber_id=pk(s.id), newsletter_id=pk(newsletter.id))
                for s in new_subscribers
            ]
        )
        await session.flush()
