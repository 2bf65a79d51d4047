"""An issue never goes out before its article is live: readers would get text the site does
not show yet, behind a link that answers 404."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlmodel import col

from app.articles.models import Article
from app.core.db import utcnow
from app.newsletter import outbox
from app.newsletter.models import NewsletterIssue
from tests.factories import ArticleFactory
from tests.newsletter.conftest import Mailroom

ADMIN = "/api/v1/admin/newsletters"


async def _scheduled_article(
    mailroom: Mailroom, articles: ArticleFactory, when: datetime
) -> Article:
    return await articles.make(await mailroom.editor(), status="scheduled", published_at=when)


async def _post(mailroom: Mailroom, path: str, body: dict[str, Any] | None = None) -> Any:
    headers = (await mailroom.editor()).headers
    return await mailroom.client.post(f"{ADMIN}{path}", json=body, headers=headers)


async def _article_published_at(mailroom: Mailroom, article_id: int, when: datetime) -> None:
    """Move the article's publication time (as the clock reaching it, or an editor moving it)."""
    async with mailroom.db.session() as session:
        await session.exec(
            update(Article).where(col(Article.id) == article_id).values(published_at=when)
        )


async def _make_due(mailroom: Mailroom, issue_id: int) -> None:
    async with mailroom.db.session() as session:
        await session.exec(
            update(NewsletterIssue)
            .where(col(NewsletterIssue.id) == issue_id)
            .values(scheduled_at=utcnow() - timedelta(seconds=1))
        )


async def test_send_now_is_refused_until_the_article_is_live(
    mailroom: Mailroom, articles: ArticleFactory
) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 3)
    article = await _scheduled_article(mailroom, articles, utcnow() + timedelta(hours=2))
    issue = await mailroom.issue(newsletter, article_id=article.id)  # drafting ahead is fine
    refused = await _post(mailroom, f"/{issue}/send")
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["code"] == "article_not_live"
    assert problem["article_id"] == article.id and problem["article_status"] == "scheduled"
    state = await mailroom.progress(issue)
    assert state["status"] == "draft" and state["recipients"] == 0
    await mailroom.drain()
    assert mailroom.sink.count() == 0
    await _article_published_at(mailroom, article.id or 0, utcnow() - timedelta(seconds=1))
    assert (await mailroom.send(issue))["recipients"] == 3
    await mailroom.drain()
    assert mailroom.per_address() == dict.fromkeys(emails, 1)


async def test_schedule_before_the_article_goes_live_is_refused(
    mailroom: Mailroom, articles: ArticleFactory
) -> None:
    newsletter = await mailroom.newsletter()
    goes_live = utcnow() + timedelta(days=1)
    article = await _scheduled_article(mailroom, articles, goes_live)
    issue = await mailroom.issue(newsletter, article_id=article.id)
    early = goes_live - timedelta(minutes=5)
    refused = await _post(mailroom, f"/{issue}/schedule", {"scheduled_at": early.isoformat()})
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "schedule_before_article"
    assert datetime.fromisoformat(refused.json()["published_at"]) == goes_live
    assert (await mailroom.progress(issue))["status"] == "draft"
    for when in (goes_live, goes_live + timedelta(minutes=5)):
        ok = await _post(mailroom, f"/{issue}/schedule", {"scheduled_at": when.isoformat()})
        assert ok.status_code == 200, ok.text
        assert ok.json()["status"] == "scheduled"


async def test_schedule_for_an_unpublished_article_is_refused(
    mailroom: Mailroom, articles: ArticleFactory
) -> None:
    newsletter = await mailroom.newsletter()
    editor = await mailroom.editor()
    article = await articles.make(editor)
    issue = await mailroom.issue(newsletter, article_id=article.id)
    back = await mailroom.client.post(
        f"/api/v1/admin/articles/{article.id}/unpublish", headers=editor.headers
    )
    assert back.status_code == 200, back.text
    when = (utcnow() + timedelta(hours=1)).isoformat()
    refused = await _post(mailroom, f"/{issue}/schedule", {"scheduled_at": when})
    assert refused.status_code == 409 and refused.json()["code"] == "article_not_live"


async def test_a_due_issue_waits_while_its_article_was_moved_later(
    mailroom: Mailroom, articles: ArticleFactory
) -> None:
    newsletter = await mailroom.newsletter()
    emails = await mailroom.subscribers(newsletter, 4)
    goes_live = utcnow() + timedelta(hours=1)
    article = await _scheduled_article(mailroom, articles, goes_live)
    issue = await mailroom.issue(newsletter, article_id=article.id)
    scheduled = await _post(mailroom, f"/{issue}/schedule", {"scheduled_at": goes_live.isoformat()})
    assert scheduled.status_code == 200, scheduled.text
    # The editors move the article a day later; the issue's time comes first.
    await _article_published_at(mailroom, article.id or 0, goes_live + timedelta(days=1))
    await _make_due(mailroom, issue)
    for _ in range(3):
        assert await outbox.promote_due(mailroom.db, mailroom.settings) == 0
    await mailroom.drain()
    held = await mailroom.progress(issue)
    assert held["status"] == "scheduled" and held["recipients"] == 0
    assert held["note"] == outbox.WAITING_NOTE
    assert mailroom.sink.count() == 0
    # The article goes live: the issue starts on the next round.
    await _article_published_at(mailroom, article.id or 0, utcnow() - timedelta(seconds=1))
    await mailroom.drain()
    done = await mailroom.progress(issue)
    assert done["status"] == "sent" and done["recipients"] == 4
    assert done["note"] == "waited for its article to go live"
    assert mailroom.per_address() == dict.fromkeys(emails, 1)


async def test_a_due_issue_whose_article_was_unpublished_expires_at_its_send_by(
    mailroom: Mailroom, articles: ArticleFactory
) -> None:
    newsletter = await mailroom.newsletter()
    await mailroom.subscribers(newsletter, 2)
    editor = await mailroom.editor()
    article = await articles.make(editor)
    send_by = utcnow() + timedelta(hours=1)
    issue = await mailroom.issue(newsletter, article_id=article.id, send_by=send_by.isoformat())
    when = (utcnow() + timedelta(minutes=30)).isoformat()
    assert (await _post(mailroom, f"/{issue}/schedule", {"scheduled_at": when})).status_code == 200
    back = await mailroom.client.post(
        f"/api/v1/admin/articles/{article.id}/unpublish", headers=editor.headers
    )
    assert back.status_code == 200, back.text
    await _make_due(mailroom, issue)
    await mailroom.drain()
    assert (await mailroom.progress(issue))["status"] == "scheduled"
    async with mailroom.db.session() as session:
        await session.exec(
            update(NewsletterIssue)
            .where(col(NewsletterIssue.id) == issue)
            .values(send_by=utcnow() - timedelta(seconds=1))
        )
    await mailroom.drain()
    stopped = await mailroom.progress(issue)
    assert stopped["status"] == "expired" and stopped["recipients"] == 0
    assert "send-by" in stopped["note"]
    assert mailroom.sink.count() == 0
