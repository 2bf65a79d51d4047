"""Every statement of the newsletter domain but the delivery ledger's (app/newsletter/outbox.py):
newsletters, issues, subscribers and their choices, deliveries for the data export; an issue's
article is read through the articles domain's repository."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, exists, func, insert, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.articles import repository as articles
from app.articles.models import Article
from app.core.db import pk
from app.newsletter.models import (
    Delivery,
    IssueStatus,
    IssueTier,
    Newsletter,
    NewsletterIssue,
    NewsletterSubscription,
    Subscriber,
)

# Newsletters


async def newsletters(session: AsyncSession) -> Sequence[Newsletter]:
    """Every newsletter, oldest first."""
    return (await session.exec(select(Newsletter).order_by(col(Newsletter.id)))).all()


async def get_newsletter(session: AsyncSession, newsletter_id: int) -> Newsletter | None:
    return await session.get(Newsletter, newsletter_id)


async def active_newsletters(
    session: AsyncSession, slugs: Sequence[str] | None
) -> list[Newsletter]:
    """The active newsletters with these slugs, or the sign-up defaults when none are named."""
    query = select(Newsletter).where(Newsletter.active == True)  # noqa: E712
    if slugs:
        query = query.where(col(Newsletter.slug).in_(list(slugs)))
    else:
        query = query.where(Newsletter.default_for_signups == True)  # noqa: E712
    return list((await session.exec(query.order_by(col(Newsletter.id)))).all())


async def newsletters_by_id(session: AsyncSession, ids: Iterable[int]) -> Sequence[Newsletter]:
    return (await session.exec(select(Newsletter).where(col(Newsletter.id).in_(list(ids))))).all()


# Issues


async def get_issue(session: AsyncSession, issue_id: int) -> NewsletterIssue | None:
    return await session.get(NewsletterIssue, issue_id)


async def issue_tier_ids(session: AsyncSession, issue_id: int) -> list[int]:
    """The tiers an issue of segment `tiers` goes to, sorted."""
    rows = await session.exec(select(IssueTier.tier_id).where(IssueTier.issue_id == issue_id))
    return sorted(rows.all())


def add_issue_tiers(session: AsyncSession, issue_id: int, tier_ids: Iterable[int]) -> None:
    session.add_all([IssueTier(issue_id=issue_id, tier_id=t) for t in sorted(set(tier_ids))])


async def latest_issue_ids(
    session: AsyncSession, newsletter_id: int | None, *, limit: int = 100
) -> list[int]:
    """The ids of the latest issues (of one newsletter, or all), newest first."""
    query = select(NewsletterIssue.id).order_by(col(NewsletterIssue.id).desc()).limit(limit)
    if newsletter_id is not None:
        query = query.where(NewsletterIssue.newsletter_id == newsletter_id)
    return [pk(i) for i in (await session.exec(query)).all()]


async def move_issue(
    session: AsyncSession, issue_id: int, allowed: Iterable[IssueStatus], to: IssueStatus
) -> bool:
    """Set the issue's status to `to` if it is in one of `allowed`; say whether it was."""
    result = await session.exec(
        update(NewsletterIssue)
        .where(
            col(NewsletterIssue.id) == issue_id,
            col(NewsletterIssue.status).in_([s.value for s in allowed]),
        )
        .values(status=to.value)
    )
    return bool(result.rowcount == 1)


async def reload(session: AsyncSession, row: NewsletterIssue) -> None:
    """Read the row again (after a statement changed it behind the ORM's back)."""
    await session.refresh(row)


# The issue's article: the articles domain's row, read through its repository.


async def article(session: AsyncSession, article_id: int | None) -> Article | None:
    return await articles.article(session, article_id) if article_id else None


async def article_tier_ids(session: AsyncSession, article_id: int | None) -> frozenset[int]:
    """The tiers a `tiers` article is for (none for any other article)."""
    if article_id is None:
        return frozenset()
    return frozenset(link.tier_id for link in await articles.tier_links(session, article_id))


@dataclass(frozen=True)
class ArticleWait:
    """An issue's article that is not live (yet) at the time asked about."""

    article_id: int
    status: str
    published_at: datetime | None


async def article_wait(
    session: AsyncSession, issue: NewsletterIssue, at: datetime | None = None
) -> ArticleWait | None:
    """Give back the issue's article when it is not live at `at` (now); None when nothing waits."""
    if issue.article_id is None:
        return None
    waiting = await articles.not_live_state(session, issue.article_id, at)
    if waiting is None:
        return None
    return ArticleWait(issue.article_id, *waiting)


# Subscribers and their choices


async def get_subscriber(session: AsyncSession, subscriber_id: int) -> Subscriber | None:
    return await session.get(Subscriber, subscriber_id)


async def subscriber_by_email(session: AsyncSession, email: str) -> Subscriber | None:
    return (await session.exec(select(Subscriber).where(Subscriber.email == email))).first()


async def subscriber_of_user(session: AsyncSession, user_id: int | None) -> Subscriber | None:
    return (await session.exec(select(Subscriber).where(Subscriber.user_id == user_id))).first()


async def subscribers_of(
    session: AsyncSession, user_id: int | None, email: str
) -> Sequence[Subscriber]:
    """The account's subscriber row and any row of its address."""
    rows = await session.exec(
        select(Subscriber).where(
            or_(col(Subscriber.user_id) == user_id, col(Subscriber.email) == email)
        )
    )
    return rows.all()


async def subscriber_lists(
    session: AsyncSession, subscriber_id: int
) -> Sequence[tuple[str, NewsletterSubscription]]:
    """(newsletter slug, subscription) for each list the subscriber was ever on."""
    query = (
        select(Newsletter.slug, NewsletterSubscription)
        .join(Newsletter, col(Newsletter.id) == NewsletterSubscription.newsletter_id)
        .where(NewsletterSubscription.subscriber_id == subscriber_id)
    )
    return (await session.exec(query)).all()


async def subscriber_deliveries(session: AsyncSession, subscriber_id: int) -> Sequence[Delivery]:
    """Every delivery made or attempted to the subscriber (the data export)."""
    return (
        await session.exec(select(Delivery).where(Delivery.subscriber_id == subscriber_id))
    ).all()


async def subscriber_status_of_user(session: AsyncSession, user_id: int | None) -> str | None:
    rows = await session.exec(select(Subscriber.status).where(Subscriber.user_id == user_id))
    return rows.first()


async def subscription(
    session: AsyncSession, subscriber_id: int, newsletter_id: int
) -> NewsletterSubscription | None:
    return await session.get(NewsletterSubscription, (subscriber_id, newsletter_id))


async def active_subscriptions(
    session: AsyncSession, subscriber_id: int
) -> Sequence[NewsletterSubscription]:
    rows = await session.exec(
        select(NewsletterSubscription).where(
            NewsletterSubscription.subscriber_id == subscriber_id,
            NewsletterSubscription.active == True,  # noqa: E712
        )
    )
    return rows.all()


async def active_list_ids(session: AsyncSession, subscriber_id: int) -> list[int]:
    """The ids of the newsletters the subscriber receives."""
    rows = await session.exec(
        select(NewsletterSubscription.newsletter_id).where(
            NewsletterSubscription.subscriber_id == subscriber_id,
            NewsletterSubscription.active == True,  # noqa: E712
        )
    )
    return list(rows.all())


async def member_list_slugs(session: AsyncSession, user_id: int | None) -> list[str]:
    """The slugs of the newsletters a member's address receives."""
    rows = await session.exec(
        select(Newsletter.slug)
        .join(NewsletterSubscription, col(NewsletterSubscription.newsletter_id) == Newsletter.id)
        .join(Subscriber, col(Subscriber.id) == NewsletterSubscription.subscriber_id)
        .where(Subscriber.user_id == user_id, NewsletterSubscription.active == True)  # noqa: E712
    )
    return list(rows.all())


# Statements the staff console runs (admin)


def follows_condition(user_id: Any, slug: str) -> ColumnElement[bool]:
    """SQL for "the member's address actively follows the newsletter `slug`", over a user id."""
    return (
        exists()
        .where(col(Subscriber.user_id) == user_id)
        .where(col(NewsletterSubscription.subscriber_id) == Subscriber.id)
        .where(col(NewsletterSubscription.active).is_(True))
        .where(col(Newsletter.id) == NewsletterSubscription.newsletter_id)
        .where(col(Newsletter.slug) == slug)
    )


def bounced_condition(user_id: Any) -> ColumnElement[bool]:
    """SQL for "the member's address bounced", over a user id column."""
    return exists().where(col(Subscriber.user_id) == user_id, col(Subscriber.status) == "bounced")


async def newsletter_by_slug(session: AsyncSession, slug: str) -> Newsletter | None:
    """The newsletter with this slug, if any."""
    return (await session.exec(select(Newsletter).where(Newsletter.slug == slug))).first()


async def active_subscriber_count(session: AsyncSession) -> int:
    """How many active subscribers follow at least one newsletter."""
    result = await session.exec(
        select(func.count(func.distinct(Subscriber.id)))
        .join(NewsletterSubscription, col(NewsletterSubscription.subscriber_id) == Subscriber.id)
        .where(Subscriber.status == "active", col(NewsletterSubscription.active).is_(True))
    )
    return int(result.one())


async def latest_issues(session: AsyncSession, limit: int) -> Sequence[NewsletterIssue]:
    """The `limit` newest issues, newest first."""
    query = select(NewsletterIssue).order_by(col(NewsletterIssue.id).desc()).limit(limit)
    return (await session.exec(query)).all()


async def delivery_counts(session: AsyncSession, issue_id: int | None) -> dict[str, int]:
    """How many of the issue's deliveries are in each status."""
    rows = await session.exec(
        select(Delivery.status, func.count())
        .where(Delivery.issue_id == issue_id)
        .group_by(col(Delivery.status))
    )
    return dict(rows.all())


async def unsubscribes_from(session: AsyncSession, issue_id: int | None) -> int:
    """How many subscriptions ended from a link in this issue."""
    result = await session.exec(
        select(func.count()).where(NewsletterSubscription.unsubscribed_from_issue_id == issue_id)
    )
    return int(result.one())


async def subscribers_matching(
    session: AsyncSession, emails: Sequence[str], user_ids: Sequence[int]
) -> Sequence[tuple[int | None, str, int | None, str]]:
    """(id, email, user id, status) of the subscribers with these addresses or accounts."""
    rows = await session.exec(
        select(Subscriber.id, Subscriber.email, Subscriber.user_id, Subscriber.status).where(
            or_(col(Subscriber.email).in_(emails), col(Subscriber.user_id).in_(user_ids))
        )
    )
    return rows.all()


async def following(
    session: AsyncSession, subscriber_ids: Sequence[int], newsletter_id: int
) -> set[int]:
    """Those of these subscribers with a subscription (active or not) to the newsletter."""
    rows = await session.exec(
        select(NewsletterSubscription.subscriber_id).where(
            col(NewsletterSubscription.subscriber_id).in_(subscriber_ids),
            NewsletterSubscription.newsletter_id == newsletter_id,
        )
    )
    return set(rows.all())


async def insert_subscribers(session: AsyncSession, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert these subscribers in one multi-row INSERT; each one's id by its email."""
    if not rows:
        return {}
    query = insert(Subscriber).returning(col(Subscriber.email), col(Subscriber.id))
    return dict((await session.exec(query, params=rows)).tuples().all())


async def link_subscriber(session: AsyncSession, subscriber_id: int, user_id: int) -> None:
    """Join an email-only subscriber to the account with the same address."""
    link = update(Subscriber).where(col(Subscriber.id) == subscriber_id)
    await session.exec(link.values(user_id=user_id))


async def insert_subscriptions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Put subscribers on newsletters, one multi-row INSERT (nothing refers back to them)."""
    if rows:
        await session.exec(insert(NewsletterSubscription), params=rows)


async def subscribed_users_among(session: AsyncSession, user_ids: Sequence[int]) -> set[int]:
    """Those of these members whose active address follows at least one newsletter."""
    rows = await session.exec(
        select(Subscriber.user_id)
        .join(NewsletterSubscription, col(NewsletterSubscription.subscriber_id) == Subscriber.id)
        .where(
            col(Subscriber.user_id).in_(user_ids),
            col(NewsletterSubscription.active).is_(True),
            Subscriber.status == "active",
        )
    )
    return {pk(uid) for uid in rows.all()}
