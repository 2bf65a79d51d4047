"""Staff rules for newsletters: lists, issues, preview, test sends, send, schedule, stop."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.articles.live import LIVE_STATUSES
from app.articles.models import Article
from app.core.config import Settings
from app.core.db import as_utc, pk, utcnow
from app.core.errors import InvalidInput, ServiceUnavailable
from app.core.mail import Mailer, MailError
from app.newsletter import delivery, rendering
from app.newsletter.dkim import sign_message
from app.newsletter.errors import (
    ArticleNotLive,
    IssueNotFound,
    IssueStateConflict,
    NewsletterNotFound,
    ScheduleBeforeArticle,
)
from app.newsletter.models import (
    Delivery,
    DeliveryStatus,
    IssueStatus,
    Newsletter,
    NewsletterIssue,
)
from app.newsletter.schemas import IssueIn


async def get_issue(session: AsyncSession, issue_id: int) -> NewsletterIssue:
    issue = await session.get(NewsletterIssue, issue_id)
    if issue is None:
        raise IssueNotFound("No such newsletter issue.")
    return issue


async def create_issue(session: AsyncSession, editor: User, data: IssueIn) -> NewsletterIssue:
    """Create a draft issue from an article, from Markdown, or both (an intro then the article).

    A scheduled article is accepted, so editors can prepare the issue ahead; it cannot be
    sent before the article is live.
    """
    newsletter = await session.get(Newsletter, data.newsletter_id)
    if newsletter is None:
        raise NewsletterNotFound("No such newsletter.")
    article = None
    if data.article_id is not None:
        article = await session.get(Article, data.article_id)
        if article is None or article.status not in LIVE_STATUSES:
            raise InvalidInput("Only published articles can be sent.", code="article_not_published")
    if article is None and not data.body_md.strip():
        raise InvalidInput("Give an article or a Markdown body.", code="issue_empty")
    subject = data.subject or (article.title if article else "")
    if not subject:
        raise InvalidInput("Give a subject.", code="issue_subject_missing")
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
    return issue


async def _content(session: AsyncSession, issue: NewsletterIssue) -> rendering.IssueContent:
    newsletter = await session.get(Newsletter, issue.newsletter_id)
    if newsletter is None:
        raise NewsletterNotFound("No such newsletter.")
    article = await session.get(Article, issue.article_id) if issue.article_id else None
    intro = await rendering.intro_html(issue.body_md)
    return rendering.IssueContent(newsletter, issue, intro, article)


async def preview(
    session: AsyncSession, settings: Settings, issue: NewsletterIssue
) -> dict[str, str]:
    """Give back the issue as a paying and as a free recipient would see it."""
    content = await _content(session, issue)
    out = {"subject": issue.subject}
    for label, paid in (("paid", True), ("free", False)):
        message = rendering.build(
            content,
            rendering.Recipient(0, 0, "preview@example.invalid", paid, True),
            settings,
            api_url=settings.api_url,
        )
        html = message.get_body(preferencelist=("html",))
        text = message.get_body(preferencelist=("plain",))
        out[f"{label}_html"] = html.get_content() if html else ""
        out[f"{label}_text"] = text.get_content() if text else ""
    return out


async def test_send(
    session: AsyncSession,
    settings: Settings,
    mailer: Mailer,
    issue: NewsletterIssue,
    to: list[str],
    *,
    as_paid: bool,
) -> int:
    """Send the issue now to the given addresses, outside the queue; subject marked [TEST]."""
    content = await _content(session, issue)
    for address in to:
        message = rendering.build(
            content,
            rendering.Recipient(0, 0, address, as_paid, True),
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
    result = await session.exec(
        update(NewsletterIssue)
        .where(
            col(NewsletterIssue.id) == issue_id,
            col(NewsletterIssue.status).in_([s.value for s in allowed]),
        )
        .values(status=IssueStatus.sending.value)
    )
    issue = await get_issue(session, issue_id)
    await session.refresh(issue)
    if result.rowcount != 1:
        raise IssueStateConflict(f"The issue is {issue.status}.", extra={"status": issue.status})
    return issue


def _not_live(wait: delivery.ArticleWait) -> ArticleNotLive:
    return ArticleNotLive(
        "The issue's article is not live yet; send it once the article is published.",
        extra={
            "article_id": wait.article_id,
            "article_status": wait.status,
            "published_at": wait.published_at.isoformat() if wait.published_at else None,
        },
    )


async def send_now(session: AsyncSession, settings: Settings, issue_id: int) -> NewsletterIssue:
    """Snapshot the recipients and queue the send; a second request gets 409, and so does an
    issue whose article is not live yet (it would mail text the site does not show)."""
    issue = await _lock_issue(session, issue_id, IssueStatus.draft, IssueStatus.scheduled)
    # Raising rolls the session back, and with it the status change above.
    wait = await delivery.article_wait(session, issue)
    if wait is not None:
        raise _not_live(wait)
    await delivery.snapshot(session, issue, settings)
    return issue


async def schedule(
    session: AsyncSession, issue: NewsletterIssue, when: datetime
) -> NewsletterIssue:
    """Set the issue to start at `when`, which must be in the future and not before its
    article goes live."""
    _require(issue, IssueStatus.draft, IssueStatus.scheduled)
    when = as_utc(when)
    if when <= utcnow():
        raise InvalidInput("Schedule a time in the future.", code="invalid_schedule")
    wait = await delivery.article_wait(session, issue, when)
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
    return issue


async def pause(session: AsyncSession, issue: NewsletterIssue) -> NewsletterIssue:
    _require(issue, IssueStatus.sending)
    issue.status = IssueStatus.paused.value
    session.add(issue)
    return issue


async def resume(session: AsyncSession, issue: NewsletterIssue) -> NewsletterIssue:
    _require(issue, IssueStatus.paused)
    issue.status = IssueStatus.sending.value
    session.add(issue)
    return issue


async def cancel(session: AsyncSession, issue: NewsletterIssue) -> NewsletterIssue:
    """Stop an issue: queued recipients are skipped; what was sent stays sent."""
    _require(
        issue, IssueStatus.draft, IssueStatus.scheduled, IssueStatus.sending, IssueStatus.paused
    )
    await session.exec(
        update(Delivery)
        .where(
            col(Delivery.issue_id) == issue.id,
            col(Delivery.status).in_([DeliveryStatus.pending.value, DeliveryStatus.unknown.value]),
        )
        .values(status=DeliveryStatus.skipped.value, last_reply="issue canceled")
    )
    issue.status = IssueStatus.canceled.value
    issue.finished_at = utcnow()
    session.add(issue)
    return issue


async def progress(session: AsyncSession, issue_id: int) -> dict[str, int]:
    """Give back the number of deliveries per status: queued, sending, sent, failed, skipped."""
    rows = await session.exec(
        select(Delivery.status, func.count())
        .where(Delivery.issue_id == issue_id)
        .group_by(col(Delivery.status))
    )
    counts = {status.value: 0 for status in DeliveryStatus}
    for status, count in rows:
        counts[status] = count
    counts["queued"] = counts.pop(DeliveryStatus.pending.value)
    return counts


async def list_issue_ids(session: AsyncSession, newsletter_id: int | None) -> list[int]:
    query = select(NewsletterIssue.id).order_by(col(NewsletterIssue.id).desc()).limit(100)
    if newsletter_id is not None:
        query = query.where(NewsletterIssue.newsletter_id == newsletter_id)
    return [pk(i) for i in (await session.exec(query)).all()]
