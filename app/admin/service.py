"""Staff console rules: member pages and detail, role and status changes, imports, the audit
log and the stats range."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any, BinaryIO

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts_repo
from app.accounts import service as accounts
from app.accounts.models import Role, User
from app.admin import csvio, member_import, stats
from app.admin import repository as repo
from app.admin.models import AuditEntry
from app.admin.repository import AuditFilters, MemberFilters
from app.admin.schemas import AuditOut, ImportOut, MemberComp, MemberDetail, MemberOut
from app.billing import repository as billing_repo
from app.billing.errors import UnknownTier
from app.billing.models import StripeEvent, Subscription, SubscriptionChange
from app.billing.repository import members as billing
from app.billing.repository import tier_members, user_reader_level
from app.billing.tiers import FREE_SLUG
from app.comments import repository as comments
from app.core.config import Settings
from app.core.db import pk, utcnow
from app.core.errors import Conflict, Forbidden, InvalidInput
from app.core.pagination import Page, clamp
from app.newsletter import repository as newsletters

__all__ = ["AuditFilters", "MemberFilters"]


@dataclass
class _PageFacts:
    """What a page of member answers shows beyond the account rows."""

    labels: dict[int, list[str]]
    tiers: dict[int, list[str]]
    comps: dict[int, list[MemberComp]]


async def _page_facts(session: AsyncSession, settings: Settings, user_ids: list[int]) -> _PageFacts:
    now, grace = utcnow(), timedelta(days=settings.billing_grace_days)
    comps: dict[int, list[MemberComp]] = {}
    for uid, comp_id, tier, starts, ends, reason in await tier_members.running_comps_of(
        session, user_ids, now
    ):
        comps.setdefault(uid, []).append(
            MemberComp(id=comp_id, tier=tier, starts_at=starts, ends_at=ends, reason=reason)
        )
    return _PageFacts(
        labels=await repo.labels_of(session, user_ids),
        tiers=await tier_members.tiers_of(session, user_ids, now, grace),
        comps=comps,
    )


def _out(user: User, facts: _PageFacts) -> MemberOut:
    uid = pk(user.id)
    return MemberOut(
        id=uid,
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        email_verified=user.email_verified,
        disabled=user.disabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        labels=facts.labels.get(uid, []),
        tiers=facts.tiers.get(uid, []),
        comps=facts.comps.get(uid, []),
    )


async def member_page(
    session: AsyncSession,
    settings: Settings,
    filters: MemberFilters,
    *,
    limit: int,
    cursor: str | None,
) -> Page[MemberOut]:
    """One page of members matching the filters, newest first, with their labels, tiers and
    running comps."""
    rows, next_cursor = await repo.search_members(
        session,
        await _with_tier(session, filters),
        grace_days=settings.billing_grace_days,
        limit=clamp(limit),
        cursor=cursor,
    )
    facts = await _page_facts(session, settings, [pk(u.id) for u in rows])
    return Page[MemberOut](items=[_out(u, facts) for u in rows], next_cursor=next_cursor)


async def _with_tier(session: AsyncSession, filters: MemberFilters) -> MemberFilters:
    """The filters with their tier slug looked up (UnknownTier for a slug that is none)."""
    if filters.tier is None:
        return filters
    if filters.tier == FREE_SLUG:
        return replace(filters, no_tier=True)
    found = await billing_repo.tier_by_slug(session, filters.tier)
    if found is None:
        raise UnknownTier("No tier has this slug.")
    return replace(filters, tier_id=pk(found.id))


def _subscription(s: Subscription, plans: dict[int | None, str]) -> dict[str, Any]:
    return {
        "id": s.id,
        "status": s.status,
        "plan": plans.get(s.plan_id),
        "amount": s.amount,
        "currency": s.currency,
        "interval": s.interval,
        "cancel_at_period_end": s.cancel_at_period_end,
        "current_period_end": s.current_period_end,
    }


def _change(h: SubscriptionChange) -> dict[str, Any]:
    return {
        "subscription_id": h.subscription_id,
        "from": h.from_status,
        "to": h.to_status,
        "at": h.occurred_at,
    }


def _event(e: StripeEvent) -> dict[str, Any]:
    return {
        "id": e.id,
        "event_id": e.event_id,
        "type": e.type,
        "status": e.status,
        "received_at": e.received_at,
        "error": e.error,
    }


async def _facts(session: AsyncSession, user_id: int) -> dict[str, Any]:
    """Everything staff need about one member beyond the account row."""
    subs = await billing.member_subscriptions(session, user_id)
    history = await billing.subscription_history(session, user_id)
    events = await billing.member_events(session, user_id)
    consents = await accounts_repo.consents_of(session, user_id)
    followed = await newsletters.member_list_slugs(session, user_id)
    comment_count = await comments.count_by_author(session, user_id)
    plans = await billing.plan_names(session)
    return {
        "subscriptions": [_subscription(s, plans) for s in subs],
        "subscription_history": [_change(h) for h in history],
        "billing_events": [_event(e) for e in events],
        "consents": [
            {
                "document": c.document,
                "version": c.version,
                "accepted_at": c.accepted_at,
                "ip": c.ip,
                "source": c.source,
            }
            for c in consents
        ],
        "newsletters": list(followed),
        "comment_count": comment_count,
    }


async def _detail(session: AsyncSession, settings: Settings, member: User) -> MemberDetail:
    facts = await _page_facts(session, settings, [pk(member.id)])
    level = await user_reader_level(session, member, grace_days=settings.billing_grace_days)
    return MemberDetail(
        **_out(member, facts).model_dump(),
        access_level=level.label,
        **await _facts(session, pk(member.id)),
    )


async def member_detail(session: AsyncSession, settings: Settings, member_id: int) -> MemberDetail:
    """One member with subscription history, billing events, consents, newsletters, comments."""
    return await _detail(session, settings, await accounts.live_member(session, member_id))


async def _check_role(session: AsyncSession, actor: User, member: User) -> None:
    if actor.role != Role.admin.value:
        raise Forbidden("Only admins change roles.", code="role_forbidden")
    if member.role == Role.admin.value and await accounts_repo.count_admins_locked(session) <= 1:
        raise Conflict("The last admin cannot stop being an admin.", code="last_admin")


async def _set_disabled(session: AsyncSession, member: User, disabled: bool) -> None:
    if (
        disabled
        and member.role == Role.admin.value
        and await accounts_repo.count_admins_locked(session) <= 1
    ):
        raise Conflict("The last admin cannot be disabled.", code="last_admin")
    member.disabled = disabled
    if disabled:
        await accounts.revoke_all_sessions(session, member)


async def change_member(
    session: AsyncSession,
    settings: Settings,
    actor: User,
    member_id: int,
    *,
    role: Role | None,
    disabled: bool | None,
    labels: Sequence[str] | None,
) -> MemberDetail:
    """Apply a staff change to a member; roles are admin-only and the last admin stays."""
    member = await accounts.live_member(session, member_id)
    if role is not None and role.value != member.role:
        await _check_role(session, actor, member)
        member.role = role.value
    if disabled is not None and disabled != member.disabled:
        await _set_disabled(session, member, disabled)
    session.add(member)
    if labels is not None:
        clean = dict.fromkeys(" ".join(x.split()) for x in labels if x.strip())
        await repo.replace_labels(session, pk(member.id), list(clean))
    return await _detail(session, settings, member)


async def import_members(
    session: AsyncSession,
    settings: Settings,
    actor: User,
    body: BinaryIO,
    *,
    dry_run: bool,
    newsletter: str | None,
) -> ImportOut:
    """Import members from a UTF-8 CSV file, optionally onto one newsletter."""
    csvio.check_utf8(body)
    target = None
    if newsletter:
        target = await newsletters.newsletter_by_slug(session, newsletter)
        if target is None:
            raise InvalidInput("No such newsletter.", code="newsletter_not_found")
    report = await member_import.import_csv(
        session,
        body,
        actor=actor,
        dry_run=dry_run,
        default_newsletter=target,
        grace=timedelta(days=settings.billing_grace_days),
    )
    return ImportOut(**report.__dict__)


async def stats_report(
    session: AsyncSession, settings: Settings, start: date | None, end: date | None
) -> dict[str, object]:
    """The publication's numbers over [start, end] (the last 30 days by default, at most a year)."""
    end = end or utcnow().date()
    start = start or end - timedelta(days=29)
    if start > end or (end - start).days > 366:
        raise InvalidInput("Use a range of at most a year, from before to.", code="invalid_range")
    return await stats.report(session, settings, start, end)


async def audit_log(
    session: AsyncSession, filters: AuditFilters, *, limit: int, cursor: str | None
) -> Page[AuditOut]:
    """Audit entries matching the filters, newest first."""
    rows, next_cursor = await repo.audit_page(session, filters, limit=limit, cursor=cursor)
    return Page[AuditOut](items=[_audit_out(r) for r in rows], next_cursor=next_cursor)


def _audit_out(entry: AuditEntry) -> AuditOut:
    return AuditOut.model_validate(entry, from_attributes=True)
