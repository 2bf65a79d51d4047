"""HTTP for staff: /api/v1/admin/tags (the list, and renames). Tags are made by naming them on
an article; editors and admins rename them."""

from __future__ import annotations

from app.accounts.deps import EditorUser
from app.articles import admin_service
from app.articles.schemas import TagStaff, TagUpdate
from app.core.config import API_PREFIX
from app.core.deps import SessionDep
from app.core.fields import Id
from app.core.openapi import errors
from app.core.routing import api_router

router = api_router(prefix=f"{API_PREFIX}/admin/tags", tags=["admin: tags"])


@router.get("", response_model=list[TagStaff])
async def list_tags(_editor: EditorUser, session: SessionDep) -> list[TagStaff]:
    """Every tag by name, with the number of articles it is on (drafts included)."""
    return await admin_service.tags(session)


@router.patch("/{tag_id}", response_model=TagStaff, responses=errors(404, 409))
async def rename_tag(
    tag_id: Id, data: TagUpdate, _editor: EditorUser, session: SessionDep
) -> TagStaff:
    """Rename a tag: its name, its slug (409 `slug_taken` if another tag has it), or both.
    Every article it is on shows the new name at once, and is found by it in search; links
    with the old slug find nothing."""
    return await admin_service.rename_tag(session, tag_id, data)
