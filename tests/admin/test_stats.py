"""Stats over a constructed history give exactly the expected numbers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Consent, Role, User
from app.billing.models import (
    CheckoutRecord,
    CompGrant,
    Payment,
    Plan,
    Subscription,
    SubscriptionChange,
    Tier,
)
from app.core.db import utcnow
from app.newsletter.models import (
    Delivery,
    Newsletter,
    NewsletterIssue,
    NewsletterSubscription,
    Subscriber,
)
from tests.factories import Factory

D1 = datetime(2026, 5, 1, 9, tzinfo=UTC)
D2 = D1 + timedelta(days=1)
D3 = D1 + timedelta(days=2)


async def test_stats_from_a_known_history(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    future = utcnow() + timedelta(days=20)
    async with app.state.db.session() as session:
        users = [User(email=f"s{i}@example.com") for i in range(6)]
        session.add_all(users)
        await session.flush()
        u = [x.id or 0 for x in users]
        tier = Tier(name="Stats", slug="stats")
        session.add(tier)
        await session.flush()
        plan = Plan(
            tier_id=tier.id or 0,
            name="Monthly",
            amount=800,
            currency="usd",
            stripe_price_id="price_m",
        )
        session.add(plan)
        await session.flush()
        # u0: signs up D1 as monthly USD, active.
        # u1: trial D1 (EUR yearly 12000), converts D2 -> active.
        # u2: active D1 (USD monthly 800), cancels D3 -> canceled, refunded 800.
        # u3: trial D2 that never converts (still trialing).
        # u4: comped.  u5: free.
        subs = [
            Subscription(
                user_id=u[0],
                provider_subscription_id="sub_0",
                customer_id="cus_0",
                status="active",
                amount=800,
                currency="usd",
                interval="month",
                current_period_end=future,
            ),
            Subscription(
                user_id=u[1],
                provider_subscription_id="sub_1",
                customer_id="cus_1",
                status="active",
                amount=12000,
                currency="eur",
                interval="year",
                current_period_end=future,
            ),
            Subscription(
                user_id=u[2],
                provider_subscription_id="sub_2",
                customer_id="cus_2",
                status="canceled",
                amount=800,
                currency="usd",
                interval="month",
                current_period_end=D3,
            ),
            Subscription(
                user_id=u[3],
                provider_subscription_id="sub_3",
                customer_id="cus_3",
                status="trialing",
                amount=800,
                currency="usd",
                interval="month",
                current_period_end=future,
            ),
        ]
        session.add_all(subs)
        await session.flush()
        s = [x.id or 0 for x in subs]
        session.add_all(
            [
                SubscriptionChange(
                    subscription_id=s[0],
                    user_id=u[0],
                    from_status=None,
                    to_status="active",
                    occurred_at=D1,
                ),
                SubscriptionChange(
                    subscription_id=s[1],
                    user_id=u[1],
                    from_status=None,
                    to_status="trialing",
                    occurred_at=D1,
                ),
                SubscriptionChange(
                    subscription_id=s[1],
                    user_id=u[1],
                    from_status="trialing",
                    to_status="active",
                    occurred_at=D2,
                ),
                SubscriptionChange(
                    subscription_id=s[2],
                    user_id=u[2],
                    from_status=None,
                    to_status="active",
                    occurred_at=D1,
                ),
                SubscriptionChange(
                    subscription_id=s[2],
                    user_id=u[2],
                    from_status="active",
                    to_status="canceled",
                    occurred_at=D3,
                ),
                SubscriptionChange(
                    subscription_id=s[3],
                    user_id=u[3],
                    from_status=None,
                    to_status="trialing",
                    occurred_at=D2,
                ),
                CompGrant(user_id=u[4], reason="press"),
                Payment(invoice_id="in_0", user_id=u[0], amount=800, currency="usd", paid_at=D1),
                Payment(invoice_id="in_1", user_id=u[1], amount=12000, currency="eur", paid_at=D2),
                Payment(
                    invoice_id="in_2",
                    user_id=u[2],
                    amount=800,
                    currency="usd",
                    paid_at=D1,
                    refunded_amount=800,
                ),
                CheckoutRecord(
                    user_id=u[0],
                    plan_id=plan.id or 0,
                    idempotency_key="k0",
                    article_slug="harbour-deal",
                    completed_at=D1,
                ),
                CheckoutRecord(
                    user_id=u[2],
                    plan_id=plan.id or 0,
                    idempotency_key="k2",
                    article_slug="harbour-deal",
                    completed_at=D1,
                ),
                CheckoutRecord(
                    user_id=u[5],
                    plan_id=plan.id or 0,
                    idempotency_key="k5",
                    article_slug="harbour-deal",
                ),
                CheckoutRecord(
                    user_id=u[3],
                    plan_id=plan.id or 0,
                    idempotency_key="k3",
                    article_slug="tide-tables",
                ),
                Consent(
                    user_id=u[0],
                    email="s0@example.com",
                    document="terms",
                    version="1",
                    source="signup",
                ),
                Consent(
                    user_id=u[0],
                    email="s0@example.com",
                    document="privacy",
                    version="1",
                    source="signup",
                ),
                Consent(
                    user_id=u[1],
                    email="s1@example.com",
                    document="terms",
                    version="1",
                    source="magic_link",
                ),
                Consent(email="x@example.com", document="terms", version="1", source="newsletter"),
                Consent(email="y@example.com", document="terms", version="1", source="newsletter"),
            ]
        )
        newsletter = Newsletter(slug="daily", name="Daily")
        session.add(newsletter)
        await session.flush()
        issue = NewsletterIssue(newsletter_id=newsletter.id or 0, subject="One", status="sent")
        session.add(issue)
        subscribers = [Subscriber(email=f"n{i}@example.com", status="active") for i in range(4)]
        session.add_all(subscribers)
        await session.flush()
        for i, sub in enumerate(subscribers):
            session.add(
                NewsletterSubscription(
                    subscriber_id=sub.id or 0,
                    newsletter_id=newsletter.id or 0,
                    active=i != 3,
                    unsubscribed_from_issue_id=issue.id if i == 3 else None,
                )
            )
            session.add(
                Delivery(
                    issue_id=issue.id or 0,
                    subscriber_id=sub.id or 0,
                    email=sub.email,
                    status="failed" if i == 2 else "sent",
                )
            )
    response = await client.get(
        "/api/v1/admin/stats?from=2026-05-01&to=2026-05-03", headers=admin.headers
    )
    assert response.status_code == 200, response.text
    stats = response.json()
    # Members are readers only (staff are not members); u0, u1, u3 paid; u4 comped.
    assert stats["totals"] == {
        "members": 6,
        "free": 2,
        "paid": 4,
        "comped": 1,
        "newsletter_subscribers": 3,
    }
    assert stats["mrr"] == {"eur": 1000.0, "usd": 800.0}
    assert stats["revenue"] == {
        "eur": {"paid": 12000, "refunded": 0},
        "usd": {"paid": 1600, "refunded": 800},
    }
    moves = {"upgrades": 0, "downgrades": 0, "tier_changes": 0}
    assert stats["daily"] == [
        {"date": "2026-05-01", "new_paid": 2, "churned": 0, **moves},
        {"date": "2026-05-02", "new_paid": 1, "churned": 0, **moves},
        {"date": "2026-05-03", "new_paid": 0, "churned": 1, **moves},
    ]
    assert stats["trials"] == {"started": 2, "converted": 1, "rate": 0.5}
    assert stats["conversions_by_article"] == [
        {"article_slug": "harbour-deal", "checkouts_started": 3, "checkouts_completed": 2},
        {"article_slug": "tide-tables", "checkouts_started": 1, "checkouts_completed": 0},
    ]
    assert stats["signups_by_source"] == {"magic_link": 1, "newsletter": 2, "signup": 1}
    assert stats["newsletter_issues"] == [
        {
            "issue_id": issue.id,
            "subject": "One",
            "status": "sent",
            "sent": 3,
            "failed": 1,
            "unsubscribes": 1,
        }
    ]
    bad = await client.get(
        "/api/v1/admin/stats?from=2026-05-03&to=2026-05-01", headers=admin.headers
    )
    assert bad.status_code == 422
