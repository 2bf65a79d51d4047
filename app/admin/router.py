"""HTTP for admins: members, stats, the audit log, and member CSV export and import."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import StreamingResponse
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import service as accounts
from app.accounts.deps import AdminUser
from app.accounts.models import Role, User
from app.admin import member_export, member_import, members, stats
from app.admin.models import AuditEntry
from app.admin.schemas import AuditOut, ImportOut, MemberDetail, MemberOut, MemberPatch
from app.billing.repository import user_reader_level
from app.core.config import API_PREFIX
from app.core.db import pk, utcnow
from app.core.deps import DatabaseDep, SessionDep, SettingsDep
from app.core.errors import InvalidInput
from app.core.fields import Day, Id, UtcDatetime
from app.core.openapi import errors
from app.core.pagination import Cursor, Limit, Page, clamp, newest_first
from app.core.routing import api_router
from app.newsletter.models import Newsletter

router = api_router(prefix=f"{API_PREFIX}/admin", tags=["admin: members"])

MAX_IMPORT_BYTES = 20 * 1024 * 1024


def _out(user: User, labels: dict[int, list[str]]) -> MemberOut:
    return MemberOut(
        id=pk(user.id),
        email=user.email,
        display_name=user.display_name,
        role=user.role,
        email_verified=user.email_verified,
        disabled=user.disabled,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
        labels=labels.get(pk(user.id), []),
    )


@router.get("/members", response_model=Page[MemberOut])
async def list_members(
    _admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    role: Role | None = None,
    access: Annotated[str | None, Query(pattern="^(free|paid)$")] = None,
    plan: Id | None = None,
    status: Annotated[str | None, Query(max_length=32)] = None,
    newsletter: Annotated[str | None, Query(max_length=100)] = None,
    created_from: UtcDatetime | None = None,
    created_to: UtcDatetime | None = None,
    comped: bool | None = None,
    bounced: bool | None = None,
    label: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[MemberOut]:
    """Members, newest first: search by email or name, filter by role, access, plan,
    subscription status, newsletter, creation dates, comps, bounces and labels."""
    filters = members.MemberFilters(
        q=q,
        role=role.value if role else None,
        access=access,
        plan_id=plan,
        status=status,
        newsletter=newsletter,
        created_from=created_from,
        created_to=created_to,
        comped=comped,
        bounced=bounced,
        label=label,
    )
    rows, next_cursor = await members.search(
        session, settings, filters, limit=clamp(limit), cursor=cursor
    )
    labels = await members.labels_of(session, [pk(u.id) for u in rows])
    return Page[MemberOut](items=[_out(u, labels) for u in rows], next_cursor=next_cursor)


async def _detail(session: AsyncSession, settings: SettingsDep, member: User) -> MemberDetail:
    labels = await members.labels_of(session, [pk(member.id)])
    level = await user_reader_level(session, member, grace_days=settings.billing_grace_days)
    return MemberDetail(
        **_out(member, labels).model_dump(),
        access_level=level.label,
        **await members.detail(session, member),
    )


class CSVResponse(StreamingResponse):
    media_type = "text/csv"


@router.get("/members/export.csv", response_class=CSVResponse)
async def export_members(_admin: AdminUser, db: DatabaseDep) -> StreamingResponse:
    """Every account as CSV (Ghost's columns, then role and disabled; no cell starts a
    spreadsheet formula), streamed page by page."""
    stamp = utcnow().strftime("%Y-%m-%d")
    return StreamingResponse(
        member_export.export_rows(db),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="members-{stamp}.csv"',
            "Cache-Control": "no-store",
        },
    )


@router.post(
    "/members/import",
    response_model=ImportOut,
    responses=errors(413),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "A Ghost or Substack members export, up to 20 MB.",
        }
    },
)
async def import_members(
    request: Request,
    admin: AdminUser,
    session: SessionDep,
    dry_run: bool = False,
    newsletter: Annotated[str | None, Query(max_length=100)] = None,
) -> ImportOut:
    """Import members from a CSV body (Ghost or Substack export columns); `dry_run=true`
    reports what the import would change without writing; `newsletter=slug` puts the rows
    marked subscribed on that list."""
    body = await request.body()
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput("The CSV must be UTF-8.", code="csv_not_utf8") from exc
    target = None
    if newsletter:
        target = (
            await session.exec(select(Newsletter).where(Newsletter.slug == newsletter))
        ).first()
        if target is None:
            raise InvalidInput("No such newsletter.", code="newsletter_not_found")
    report = await member_import.import_csv(
        session, text, actor=admin, dry_run=dry_run, default_newsletter=target
    )
    return ImportOut(**report.__dict__)


@router.get("/members/{member_id}", response_model=MemberDetail)
async def get_member(
    member_id: Id, _admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> MemberDetail:
    """One member with subscription history, billing events, consents, newsletters, comments."""
    return await _detail(session, settings, await accounts.live_member(session, member_id))


@router.patch("/members/{member_id}", response_model=MemberDetail, responses=errors(409))
async def patch_member(
    member_id: Id, body: MemberPatch, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> MemberDetail:
    """Change role, disable or enable (disabling signs the member out everywhere), set labels."""
    member = await accounts.live_member(session, member_id)
    await members.change(
        session, admin, member, role=body.role, disabled=body.disabled, labels=body.labels
    )
    return await _detail(session, settings, member)


@router.get("/stats")
async def get_stats(
    _admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    start: Annotated[Day | None, Query(alias="from")] = None,
    end: Annotated[Day | None, Query(alias="to")] = None,
) -> dict[str, object]:
    """Totals, MRR per currency, revenue and refunds, new paid and churned per day, trials,
    conversions by article, sign-ups by source, and newsletter results."""
    today = utcnow().date()
    end = end or today
    start = start or end - timedelta(days=29)
    if start > end or (end - start).days > 366:
        raise InvalidInput("Use a range of at most a year, from before to.", code="invalid_range")
    return await stats.report(session, settings, start, end)


@router.get("/audit", response_model=Page[AuditOut])
async def audit_log(
    _admin: AdminUser,
    session: SessionDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    actor: Id | None = None,
    entity: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    action: Annotated[str | None, Query(max_length=16)] = None,
) -> Page[AuditOut]:
    """Every staff write, newest first (append-only: there is no way to change it here)."""
    query = select(AuditEntry)
    if actor is not None:
        query = query.where(AuditEntry.actor_id == actor)
    if entity:
        query = query.where(AuditEntry.entity == entity)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    if action:
        query = query.where(AuditEntry.action == action)
    rows, next_cursor = await newest_first(
        session, query, col(AuditEntry.id), limit=limit, cursor=cursor
    )
    return Page[AuditOut](
        items=[AuditOut.model_validate(r, from_attributes=True) for r in rows],
        next_cursor=next_cursor,
    )
