"""Staff rules for newsletters: lists, issues, preview, test sends, send, schedule, stop."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.articles.live import LIVE_STATUSES
from app.billing import repository as billing
from app.billing.repository.recipient_tiers import tier_slugs
from app.core.config import Settings
from app.core.db import as_utc, pk, utcnow
from app.core.errors import InvalidInput, ServiceUnavailable
from app.core.mail import Mailer, MailError
from app.newsletter import issue_mail, outbox, recipients, repository
from app.newsletter.dkim import sign_message
from app.newsletter.errors import (
    ArticleNotLive,
    InvalidSegment,
    IssueNotFound,
    IssueStateConflict,
    NewsletterNotFound,
    ScheduleBeforeArticle,
    UnknownTier,
)
from app.newsletter.models import IssueStatus, Newsletter, NewsletterIssue, Segment
from app.newsletter.repository import ArticleWait
from app.newsletter.schemas import IssueIn, NewsletterIn


async def list_newsletters(session: AsyncSession) -> Sequence[Newsletter]:
    """Give back every newsletter the publication runs."""
    return await repository.newsletters(session)


async def create_newsletter(session: AsyncSession, data: NewsletterIn) -> Newsletter:
    """Start a newsletter."""
    newsletter = Newsletter(
        **data.model_dump(exclude={"sender_email"}), sender_email=data.sender_email or ""
    )
    session.add(newsletter)
    await session.flush()
    return newsletter


async def update_newsletter(
    session: AsyncSession, newsletter_id: int, data: NewsletterIn
) -> Newsletter:
    """Replace a newsletter's settings (an empty optional field is stored as "")."""
    newsletter = await repository.get_newsletter(session, newsletter_id)
    if newsletter is None:
        raise NewsletterNotFound("No such newsletter.")
    for name, value in data.model_dump().items():
        setattr(newsletter, name, value if value is not None or name == "reply_to" else "")
    session.add(newsletter)
    return newsletter


@dataclass(frozen=True)
class IssueState:
    """An issue, the tiers of its segment (slugs) and how far its send has come
    (deliveries per status)."""

    issue: NewsletterIssue
    progress: dict[str, int]
    segment_tiers: list[str]


async def _state(session: AsyncSession, issue: NewsletterIssue) -> IssueState:
    issue_id = pk(issue.id)
    slugs = await tier_slugs(session, await repository.issue_tier_ids(session, issue_id))
    return IssueState(issue, await outbox.progress(session, issue_id), slugs)


async def _segment_tier_ids(session: AsyncSession, data: IssueIn) -> list[int]:
    """The tier ids of the issue's segment; segment `tiers` names at least one, no other any."""
    if data.segment is not Segment.tiers:
        if data.segment_tiers:
            raise InvalidSegment("Only segment `tiers` names tiers.")
        return []
    if not data.segment_tiers:
        raise InvalidSegment("Segment `tiers` names at least one tier.")
    wanted = set(data.segment_tiers)
    found = {t.slug: pk(t.id) for t in await billing.tiers_by_slugs(session, sorted(wanted))}
    missing = sorted(wanted - set(found))
    if missing:
        raise UnknownTier(f"No tier has the slug {missing[0]!r}.", extra={"tiers": missing})
    return sorted(found.values())


async def get_issue(session: AsyncSession, issue_id: int) -> NewsletterIssue:
    """Give back the issue, or raise IssueNotFound."""
    issue = await repository.get_issue(session, issue_id)
    if issue is None:
        raise IssueNotFound("No such newsletter issue.")
    return issue


async def issue_state(session: AsyncSession, issue_id: int) -> IssueState:
    """Give back one issue with its progress."""
    return await _state(session, await get_issue(session, issue_id))


async def list_issues(session: AsyncSession, newsletter_id: int | None) -> list[IssueState]:
    """Give back the latest 100 issues (of one newsletter, or all), newest first."""
    return [
        await issue_state(session, issue_id)
        for issue_id in await repository.latest_issue_ids(session, newsletter_id)
    ]


async def create_issue(session: AsyncSession, editor: User, data: IssueIn) -> IssueState:
    """Create a draft issue from an article, from Markdown, or both (an intro then the article).

    A scheduled article is accepted, so editors can prepare the issue ahead; it cannot be
    sent before the article is live.
    """
    newsletter = await repository.get_newsletter(session, data.newsletter_id)
    if newsletter is None:
        raise NewsletterNotFound("No such newsletter.")
    article = await repository.article(session, data.article_id)
    if data.article_id is not None and (article is None or article.status not in LIVE_STATUSES):
        raise InvalidInput("Only published articles can be sent.", code="article_not_published")
    if article is None and not data.body_md.strip():
        raise InvalidInput("Give an article or a Markdown body.", code="issue_empty")
    subject = data.subject or (article.title if article else "")
    if not subject:
        raise InvalidInput("Give a subject.", code="issue_subject_missing")
    tier_ids = await _segment_tier_ids(session, data)
    issue = NewsletterIssue(
        newsletter_id=data.newsletter_id,
        subject=subject,
        preheader=data.preheader,
        article_id=data.article_id,
        body_md=data.body_md,
        segment=data.segment.value,
        send_by=as_utc(data.send_by) if data.send_by else None,
        created_by_id=editor.id,
    )
    session.add(issue)
    await session.flush()
    repository.add_issue_tiers(session, pk(issue.id), tier_ids)
    await session.flush()
    return await _state(session, issue)


async def content_of(session: AsyncSession, issue: NewsletterIssue) -> issue_mail.IssueContent:
    """Give back what the issue says, rendered, as its recipients get it."""
    newsletter = await repository.get_newsletter(session, issue.newsletter_id)
    if newsletter is None:
        raise NewsletterNotFound("No such newsletter.")
    article = await repository.article(session, issue.article_id)
    tiers = await repository.article_tier_ids(session, issue.article_id)
    return await issue_mail.issue_content(newsletter, issue, article, tiers)


def _seen_by(
    content: issue_mail.IssueContent, settings: Settings, recipient: issue_mail.Recipient
) -> tuple[str, str]:
    message = issue_mail.build(content, recipient, settings, api_url=settings.api_url)
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    return (html.get_content() if html else "", text.get_content() if text else "")


async def preview(session: AsyncSession, settings: Settings, issue_id: int) -> dict[str, Any]:
    """Give back the issue as a paying reader of no named tier, a free member and a reader
    of each tier would get it (each rendered once per entitlements, as the send does)."""
    issue = await get_issue(session, issue_id)
    content = await content_of(session, issue)
    out: dict[str, Any] = {"subject": issue.subject}
    address = "preview@example.invalid"
    for label, paid in (("paid", True), ("free", False)):
        recipient = issue_mail.Recipient(0, 0, address, paid, True)
        out[f"{label}_html"], out[f"{label}_text"] = _seen_by(content, settings, recipient)
    out["tiers"] = []
    for tier in await billing.all_tiers(session):
        recipient = issue_mail.Recipient(0, 0, address, True, True, str(pk(tier.id)))
        html, text = _seen_by(content, settings, recipient)
        out["tiers"].append({"tier": tier.slug, "name": tier.name, "html": html, "text": text})
    return out


async def test_send(
    read: AsyncSession,
    settings: Settings,
    mailer: Mailer,
    issue_id: int,
    to: list[str],
    *,
    as_paid: bool,
) -> int:
    """Send the issue now to the given addresses, outside the queue; subject marked [TEST].

    Takes a read session: nothing is written, so no write lock is held while the mail
    server answers.
    """
    issue = await get_issue(read, issue_id)
    content = await content_of(read, issue)
    for address in to:
        message = issue_mail.build(
            content,
            issue_mail.Recipient(0, 0, address, as_paid, True),
            settings,
            api_url=settings.api_url,
        )
        message.replace_header("Subject", f"[TEST] {issue.subject}")
        del message["Message-ID"]
        sign_message(message, settings)
        try:
            await mailer.send(message)
        except MailError as exc:
            raise ServiceUnavailable(
                f"The mail server did not take the message: {exc}", code="mail_unavailable"
            ) from exc
    return len(to)


def _require(issue: NewsletterIssue, *allowed: IssueStatus) -> None:
    if issue.status not in {s.value for s in allowed}:
        raise IssueStateConflict(f"The issue is {issue.status}.", extra={"status": issue.status})


async def _lock_issue(
    session: AsyncSession, issue_id: int, *allowed: IssueStatus
) -> NewsletterIssue:
    """Move an issue out of `allowed` states with a conditional UPDATE: of two clicks, one wins."""
    moved = await repository.move_issue(session, issue_id, allowed, IssueStatus.sending)
    issue = await get_issue(session, issue_id)
    await repository.reload(session, issue)
    if not moved:
        raise IssueStateConflict(f"The issue is {issue.status}.", extra={"status": issue.status})
    return issue


def _not_live(wait: ArticleWait) -> ArticleNotLive:
    return ArticleNotLive(
        "The issue's article is not live yet; send it once the article is published.",
        extra={
            "article_id": wait.article_id,
            "article_status": wait.status,
            "published_at": wait.published_at.isoformat() if wait.published_at else None,
        },
    )


async def send_now(session: AsyncSession, settings: Settings, issue_id: int) -> IssueState:
    """Snapshot the recipients and queue the send; a second request gets 409, and so does an
    issue whose article is not live yet (it would mail text the site does not show)."""
    issue = await _lock_issue(session, issue_id, IssueStatus.draft, IssueStatus.scheduled)
    # Raising rolls the session back, and with it the status change above.
    wait = await repository.article_wait(session, issue)
    if wait is not None:
        raise _not_live(wait)
    await recipients.snapshot(session, issue, settings)
    return await _state(session, issue)


async def schedule(session: AsyncSession, issue_id: int, when: datetime) -> IssueState:
    """Set the issue to start at `when`, which must be in the future and not before its
    article goes live."""
    issue = await get_issue(session, issue_id)
    _require(issue, IssueStatus.draft, IssueStatus.scheduled)
    when = as_utc(when)
    if when <= utcnow():
        raise InvalidInput("Schedule a time in the future.", code="invalid_schedule")
    wait = await repository.article_wait(session, issue, when)
    if wait is not None:
        if wait.published_at is None or wait.status not in LIVE_STATUSES:
            raise _not_live(wait)
        raise ScheduleBeforeArticle(
            "Schedule the issue at or after the article's publication time.",
            extra={"article_id": wait.article_id, "published_at": wait.published_at.isoformat()},
        )
    issue.status = IssueStatus.scheduled.value
    issue.scheduled_at = when
    session.add(issue)
    return await _state(session, issue)


async def pause(session: AsyncSession, issue_id: int) -> IssueState:
    """Pause a sending issue."""
    issue = await get_issue(session, issue_id)
    _require(issue, IssueStatus.sending)
    issue.status = IssueStatus.paused.value
    session.add(issue)
    return await _state(session, issue)


async def resume(session: AsyncSession, issue_id: int) -> IssueState:
    """Continue a paused issue."""
    issue = await get_issue(session, issue_id)
    _require(issue, IssueStatus.paused)
    issue.status = IssueStatus.sending.value
    session.add(issue)
    return await _state(session, issue)


async def cancel(session: AsyncSession, issue_id: int) -> IssueState:
    """Stop an issue: queued recipients are skipped; what was sent stays sent."""
    issue = await get_issue(session, issue_id)
    _require(
        issue, IssueStatus.draft, IssueStatus.scheduled, IssueStatus.sending, IssueStatus.paused
    )
    await outbox.skip_queued(session, issue.id, "issue canceled")
    issue.status = IssueStatus.canceled.value
    issue.finished_at = utcnow()
    session.add(issue)
    return await _state(session, issue)
