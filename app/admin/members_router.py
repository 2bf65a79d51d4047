"""HTTP for staff work on members: search, detail, changes, CSV export and import."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from tempfile import SpooledTemporaryFile
from typing import Annotated, BinaryIO, cast

from fastapi import Depends, Query, Request, UploadFile
from fastapi.responses import StreamingResponse

from app.accounts.deps import AdminUser
from app.accounts.models import Role
from app.admin import member_export, service
from app.admin.schemas import ImportOut, MemberDetail, MemberOut, MemberPatch
from app.core.config import API_PREFIX
from app.core.db import utcnow
from app.core.deps import DatabaseDep, SessionDep, SettingsDep
from app.core.fields import Id, UtcDatetime
from app.core.openapi import errors
from app.core.pagination import Cursor, Limit, Page
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/admin", tags=["admin: members"])

MAX_IMPORT_BYTES = 20 * 1024 * 1024
# An upload larger than this waits on disk for the import, not in memory.
SPOOL_BYTES = 1024 * 1024


async def spooled_body(request: Request) -> AsyncIterator[BinaryIO]:
    """The request body as a file, spooled to disk past SPOOL_BYTES (the size limit is the
    body-size middleware's, counted as the body streams in)."""
    spool = cast(BinaryIO, SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115 - closed below
    upload = UploadFile(spool)
    try:
        async for received in request.stream():
            # In bounded pieces: a whole body handed over at once is not copied in one go.
            for at in range(0, len(received), SPOOL_BYTES):
                await upload.write(received[at : at + SPOOL_BYTES])
        await upload.seek(0)
        yield upload.file
    finally:
        await upload.close()


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
    tier: Annotated[str | None, Query(max_length=100)] = None,
) -> Page[MemberOut]:
    """Members, newest first: search by email or name, filter by role, access, plan,
    subscription status, newsletter, creation dates, comps, bounces, labels and tier (a
    tier's slug: members who have it now; `free`: members with no paid tier; an unknown
    slug is 422 `unknown_tier`)."""
    filters = service.MemberFilters(
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
        tier=tier,
    )
    return await service.member_page(session, settings, filters, limit=limit, cursor=cursor)


class CSVResponse(StreamingResponse):
    media_type = "text/csv"


@router.get("/members/export.csv", response_class=CSVResponse)
async def export_members(
    _admin: AdminUser, db: DatabaseDep, settings: SettingsDep
) -> StreamingResponse:
    """Every account as CSV (Ghost's columns, `tiers` with the slugs of the tiers each has
    now, then role and disabled; no cell starts a spreadsheet formula), streamed page by
    page."""
    stamp = utcnow().strftime("%Y-%m-%d")
    grace = timedelta(days=settings.billing_grace_days)
    return StreamingResponse(
        member_export.export_rows(db, grace),
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
    admin: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    body: Annotated[BinaryIO, Depends(spooled_body)],
    dry_run: bool = False,
    newsletter: Annotated[str | None, Query(max_length=100)] = None,
) -> ImportOut:
    """Import members from a CSV body (Ghost or Substack export columns); `dry_run=true`
    reports what the import would change without writing; `newsletter=slug` puts the rows
    marked subscribed on that list."""
    return await service.import_members(
        session, settings, admin, body, dry_run=dry_run, newsletter=newsletter
    )


@router.get("/members/{member_id}", response_model=MemberDetail)
async def get_member(
    member_id: Id, _admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> MemberDetail:
    """One member with subscription history, billing events, consents, newsletters, comments."""
    return await service.member_detail(session, settings, member_id)


@router.patch("/members/{member_id}", response_model=MemberDetail, responses=errors(409))
async def patch_member(
    member_id: Id, body: MemberPatch, admin: AdminUser, session: SessionDep, settings: SettingsDep
) -> MemberDetail:
    """Change role, disable or enable (disabling signs the member out everywhere), set labels."""
    return await service.change_member(
        session,
        settings,
        admin,
        member_id,
        role=body.role,
        disabled=body.disabled,
        labels=body.labels,
    )
