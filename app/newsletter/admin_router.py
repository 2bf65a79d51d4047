"""HTTP for editors: newsletter lists and issues (create, preview, test, send, track)."""

from __future__ import annotations

from fastapi import Request, status

from app.accounts.deps import EditorUser
from app.core.config import API_PREFIX
from app.core.deps import ReadSessionDep, SessionDep, SettingsDep
from app.core.fields import Id
from app.core.openapi import errors
from app.core.routing import api_router
from app.newsletter import service
from app.newsletter.models import Newsletter
from app.newsletter.schemas import (
    IssueIn,
    IssueOut,
    NewsletterIn,
    NewsletterOut,
    PreviewOut,
    ScheduleIn,
    TestSendIn,
)

router = api_router(prefix=f"{API_PREFIX}/admin/newsletters", tags=["admin: newsletters"])


def _list_out(newsletter: Newsletter) -> NewsletterOut:
    return NewsletterOut.model_validate(newsletter, from_attributes=True)


def _issue_out(state: service.IssueState) -> IssueOut:
    return IssueOut(
        **state.issue.model_dump(exclude={"body_md", "created_by_id"}),
        segment_tiers=state.segment_tiers,
        progress=state.progress,
    )


@router.get("/lists", response_model=list[NewsletterOut])
async def lists(_editor: EditorUser, session: SessionDep) -> list[NewsletterOut]:
    """Every newsletter the publication runs."""
    return [_list_out(n) for n in await service.list_newsletters(session)]


@router.post(
    "/lists",
    status_code=status.HTTP_201_CREATED,
    response_model=NewsletterOut,
    responses=errors(409),
)
async def create_list(
    body: NewsletterIn, _editor: EditorUser, session: SessionDep
) -> NewsletterOut:
    """Start a newsletter (e.g. a daily briefing or a weekly digest)."""
    return _list_out(await service.create_newsletter(session, body))


@router.put("/lists/{newsletter_id}", response_model=NewsletterOut, responses=errors(409))
async def update_list(
    newsletter_id: Id, body: NewsletterIn, _editor: EditorUser, session: SessionDep
) -> NewsletterOut:
    """Replace a newsletter's settings."""
    return _list_out(await service.update_newsletter(session, newsletter_id, body))


@router.get("", response_model=list[IssueOut])
async def issues(
    _editor: EditorUser,
    session: SessionDep,
    newsletter_id: Id | None = None,
) -> list[IssueOut]:
    """The latest 100 issues, newest first, with progress."""
    return [_issue_out(state) for state in await service.list_issues(session, newsletter_id)]


@router.post(
    "", status_code=status.HTTP_201_CREATED, response_model=IssueOut, responses=errors(404, 422)
)
async def create_issue(body: IssueIn, editor: EditorUser, session: SessionDep) -> IssueOut:
    """Draft an issue from an article and/or Markdown, for everyone on the list or a segment
    (`free`, `paid`, or `tiers` with `segment_tiers`: readers entitled to any of them)."""
    return _issue_out(await service.create_issue(session, editor, body))


@router.get("/{issue_id}", response_model=IssueOut)
async def get_issue(issue_id: Id, _editor: EditorUser, session: SessionDep) -> IssueOut:
    """One issue with its progress (queued, sending, sent, failed, skipped) and timings."""
    return _issue_out(await service.issue_state(session, issue_id))


@router.get("/{issue_id}/preview", response_model=PreviewOut)
async def preview(
    issue_id: Id, _editor: EditorUser, session: SessionDep, settings: SettingsDep
) -> PreviewOut:
    """The issue as each kind of recipient gets it (HTML and text): a paying reader of no
    tier the article names (`paid_*`), a free member (`free_*`), a reader of each tier."""
    return PreviewOut(**await service.preview(session, settings, issue_id))


@router.post("/{issue_id}/test", status_code=status.HTTP_202_ACCEPTED, responses=errors(503))
async def test_send(
    issue_id: Id,
    body: TestSendIn,
    request: Request,
    _editor: EditorUser,
    read: ReadSessionDep,
    settings: SettingsDep,
) -> dict[str, int]:
    """Send the issue now to a few addresses, marked [TEST]; 503 when the mail server fails.
    Nothing is written, so no write lock is held while the mail server answers."""
    mailer = request.app.state.mailer
    sent = await service.test_send(read, settings, mailer, issue_id, body.to, as_paid=body.as_paid)
    return {"sent": sent}


@router.post(
    "/{issue_id}/send",
    response_model=IssueOut,
    responses={409: {"description": "Already sending, or the article is not live"}},
)
async def send(
    issue_id: Id, _editor: EditorUser, session: SessionDep, settings: SettingsDep
) -> IssueOut:
    """Send now: recipients are fixed at this moment; a second request gets 409."""
    return _issue_out(await service.send_now(session, settings, issue_id))


@router.post("/{issue_id}/schedule", response_model=IssueOut, responses=errors(409))
async def schedule(
    issue_id: Id, body: ScheduleIn, _editor: EditorUser, session: SessionDep
) -> IssueOut:
    """Send at a future time (the worker starts it; late if no worker runs, unless send_by)."""
    return _issue_out(await service.schedule(session, issue_id, body.scheduled_at))


@router.post("/{issue_id}/pause", response_model=IssueOut, responses=errors(409))
async def pause(issue_id: Id, _editor: EditorUser, session: SessionDep) -> IssueOut:
    """Pause a send; resuming skips nobody and repeats nobody."""
    return _issue_out(await service.pause(session, issue_id))


@router.post("/{issue_id}/resume", response_model=IssueOut, responses=errors(409))
async def resume(issue_id: Id, _editor: EditorUser, session: SessionDep) -> IssueOut:
    """Continue a paused send."""
    return _issue_out(await service.resume(session, issue_id))


@router.post("/{issue_id}/cancel", response_model=IssueOut, responses=errors(409))
async def cancel(issue_id: Id, _editor: EditorUser, session: SessionDep) -> IssueOut:
    """Stop a send; what went out stays sent, the rest is skipped."""
    return _issue_out(await service.cancel(session, issue_id))
