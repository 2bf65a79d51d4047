"""Segments by tier and each recipient's tiers: the snapshot's SQL against the Python rule on
a table of readers, a segment of chosen tiers, and a supporter-only article sent to a mixed
list (the sentinel reaches its tier's readers and staff only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import col, select

from app.access.entitlements import (
    STAFF,
    Entitlements,
    GrantFacts,
    SubscriptionFacts,
    entitlements_from,
)
from app.accounts.models import Role, User
from app.billing.models import CompGrant, Plan, Subscription
from app.billing.repository.recipient_tiers import parse_tier_list
from app.core.db import pk, utcnow
from app.newsletter.models import Delivery, NewsletterSubscription, Subscriber
from tests.factories import ArticleFactory, Factory, Member
from tests.newsletter.conftest import Mailroom

DAY = timedelta(days=1)
SENTINEL = "SUPPORTERSENTINEL"
BODY = f"Free opening of the story.\n\n<!-- paywall -->\n\n{SENTINEL} lives here."


@dataclass
class Row:
    """One reader of the table: (status, tier letter or None, period end in days, past due
    since in days, kept tier letter, kept until in days) per subscription, and comps as
    (starts, ends, revoked) in days from now and their tier letter (None: every tier)."""

    name: str
    subs: list[tuple[str, str | None, int | None, int | None, str | None, int | None]] = field(
        default_factory=list
    )
    comps: list[tuple[int, int | None, int | None, str | None]] = field(default_factory=list)
    staff: bool = False


TABLE = [
    Row("active a", [("active", "a", 10, None, None, None)]),
    Row("trialing b", [("trialing", "b", 10, None, None, None)]),
    Row("active a and b", [("active", "a", 10, None, None, None),
                           ("active", "b", 20, None, None, None)]),
    Row("active a, old canceled b", [("active", "a", 10, None, None, None),
                                     ("canceled", "b", -30, None, None, None)]),
    Row("past due b inside grace", [("past_due", "b", -5, -2, None, None)]),
    Row("past due a beyond grace", [("past_due", "a", -40, -30, None, None)]),
    Row("canceled a", [("canceled", "a", -3, None, None, None)]),
    Row("unpaid b", [("unpaid", "b", -3, None, None, None)]),
    Row("incomplete a", [("incomplete", "a", 10, None, None, None)]),
    Row("paused b", [("paused", "b", 10, None, None, None)]),
    Row("active long after its period", [("active", "b", -60, None, None, None)]),
    Row("downgraded b to a, keeps b", [("active", "a", 10, None, "b", 10)]),
    Row("downgraded b to a, kept b over", [("active", "a", 10, None, "b", -1)]),
    Row("canceled, kept b still ahead", [("canceled", "a", 10, None, "b", 10)]),
    Row("plan since deleted", [("active", None, 10, None, None, None)]),
    Row("comp running", comps=[(-10, None, None, None)]),
    Row("comp ended, trialing a", [("trialing", "a", 10, None, None, None)],
        [(-10, -1, None, None)]),
    Row("comp revoked", comps=[(-10, None, -2, None)]),
    Row("comp not started", comps=[(5, None, None, None)]),
    Row("comp until later, canceled b", [("canceled", "b", -3, None, None, None)],
        [(-10, 10, None, None)]),
    Row("staff", staff=True),
    Row("free member"),
    Row("comp of b", comps=[(-10, None, None, "b")]),
    Row("comp of b, active a", [("active", "a", 10, None, None, None)],
        [(-10, 10, None, "b")]),
    Row("comp of a ended, comp of b running", comps=[(-10, -1, None, "a"),
                                                    (-10, None, None, "b")]),
]  # fmt: skip


def python_rule(row: Row, tiers: dict[str, int]) -> Entitlements:
    """The reader's entitlements by `entitlements_from`."""
    if row.staff:
        return STAFF
    now = utcnow()

    def at(days: int | None) -> datetime | None:
        return None if days is None else now + days * DAY

    subs = [
        SubscriptionFacts(
            status, at(end), False, at(since), tiers[t] if t else None,
            tiers[k] if k else None, at(until),
        )
        for status, t, end, since, k, until in row.subs
    ]  # fmt: skip
    grants = [
        GrantFacts(now + s * DAY, at(e), at(r), tiers[t] if t else None) for s, e, r, t in row.comps
    ]
    return entitlements_from(subs, grants, now=now, grace=7 * DAY)


async def seed_table(app: FastAPI, newsletter_id: int, tiers: dict[str, int]) -> dict[str, Row]:
    """Write the table's readers, each on the list; give back the row of each address."""
    now = utcnow()
    by_email: dict[str, Row] = {}
    async with app.state.db.session() as session:
        plans = {
            letter: pk((await session.exec(select(Plan.id).where(Plan.tier_id == t))).first())
            for letter, t in tiers.items()
        }
        for i, row in enumerate(TABLE):
            email = f"table{i}@example.com"
            role = Role.editor.value if row.staff else Role.reader.value
            user = User(email=email, role=role, email_verified=True)
            session.add(user)
            await session.flush()
            for k, (status, t, end, since, kept, until) in enumerate(row.subs):
                session.add(
                    Subscription(
                        user_id=pk(user.id),
                        provider_subscription_id=f"sub_table_{i}_{k}",
                        customer_id=f"cus_table_{i}",
                        plan_id=plans[t] if t else None,
                        status=status,
                        current_period_end=None if end is None else now + end * DAY,
                        past_due_since=None if since is None else now + since * DAY,
                        kept_plan_id=plans[kept] if kept else None,
                        kept_until=None if until is None else now + until * DAY,
                    )
                )
            for starts, ends, revoked, comp_tier in row.comps:
                session.add(
                    CompGrant(
                        user_id=pk(user.id),
                        tier_id=tiers[comp_tier] if comp_tier else None,
                        starts_at=now + starts * DAY,
                        ends_at=None if ends is None else now + ends * DAY,
                        revoked_at=None if revoked is None else now + revoked * DAY,
                    )
                )
            subscriber = Subscriber(email=email, user_id=user.id, status="active", confirmed_at=now)
            session.add(subscriber)
            await session.flush()
            session.add(
                NewsletterSubscription(subscriber_id=pk(subscriber.id), newsletter_id=newsletter_id)
            )
            by_email[email] = row
    return by_email


async def deliveries(app: FastAPI, issue_id: int) -> dict[str, tuple[bool, bool, str]]:
    async with app.state.db.session(write=False) as session:
        rows = await session.exec(
            select(Delivery.email, Delivery.paid, Delivery.member, Delivery.tiers).where(
                col(Delivery.issue_id) == issue_id
            )
        )
        return {email: (bool(paid), bool(member), tiers) for email, paid, member, tiers in rows}


async def two_tiers(factory: Factory) -> dict[str, int]:
    return {"a": pk((await factory.tier("alpha")).id), "b": pk((await factory.tier("beta")).id)}


async def test_sql_tier_rule_agrees_with_python_rule_on_every_row(
    mailroom: Mailroom, factory: Factory, app: FastAPI
) -> None:
    """Each delivery's tiers and paid flag, written by the database in the snapshot, are what
    `entitlements_from` says of the same reader."""
    tiers = await two_tiers(factory)
    newsletter = await mailroom.newsletter()
    by_email = await seed_table(app, newsletter, tiers)
    [email_only] = await mailroom.subscribers(newsletter, 1, prefix="anon")
    issue = await mailroom.issue(newsletter)
    await mailroom.send(issue)
    written = await deliveries(app, issue)
    assert written.pop(email_only) == (False, False, "")
    assert set(written) == set(by_email)
    for email, (paid, member, tier_list) in written.items():
        want = python_rule(by_email[email], tiers)
        every_tier, ids = parse_tier_list(tier_list)
        assert (every_tier, ids) == (want.every_tier, want.tiers), by_email[email].name
        assert (paid, member) == (want.paid, True), by_email[email].name
    # The table reaches every case the rule tells apart.
    kinds = {parse_tier_list(t) for _, _, t in written.values()}
    assert {(True, frozenset()), (False, frozenset()), (False, frozenset(tiers.values()))} <= kinds


@pytest.mark.parametrize("chosen", [["alpha"], ["beta"], ["alpha", "beta"]])
async def test_a_segment_of_tiers_goes_to_exactly_the_readers_entitled_to_one(
    mailroom: Mailroom, factory: Factory, app: FastAPI, chosen: list[str]
) -> None:
    tiers = await two_tiers(factory)
    ids = {tiers["a" if slug == "alpha" else "b"] for slug in chosen}
    newsletter = await mailroom.newsletter()
    by_email = await seed_table(app, newsletter, tiers)
    await mailroom.subscribers(newsletter, 2, prefix="anon")
    issue = await mailroom.issue(newsletter, segment="tiers", segment_tiers=chosen)
    started = await mailroom.send(issue)
    assert started["segment"] == "tiers" and started["segment_tiers"] == sorted(chosen)
    want = {e for e, row in by_email.items() if python_rule(row, tiers).has_any(ids)}
    assert set(await deliveries(app, issue)) == want
    assert started["recipients"] == len(want)
    assert "table21@example.com" not in want  # the free member
    assert "table20@example.com" in want  # staff read every tier


async def test_a_segment_of_tiers_names_known_tiers_and_only_for_segment_tiers(
    mailroom: Mailroom, factory: Factory, client: AsyncClient
) -> None:
    await factory.tier("supporter")
    newsletter = await mailroom.newsletter()
    headers = (await mailroom.editor()).headers
    base = {"newsletter_id": newsletter, "subject": "S", "body_md": "Hi."}
    for body, code in (
        ({"segment": "tiers", "segment_tiers": ["nobody"]}, "unknown_tier"),
        ({"segment": "tiers"}, "invalid_segment"),
        ({"segment": "tiers", "segment_tiers": []}, "invalid_segment"),
        ({"segment": "paid", "segment_tiers": ["supporter"]}, "invalid_segment"),
    ):
        response = await client.post("/api/v1/admin/newsletters", json=base | body, headers=headers)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code
    made = await client.post(
        "/api/v1/admin/newsletters",
        json=base | {"segment": "tiers", "segment_tiers": ["supporter", "supporter"]},
        headers=headers,
    )
    assert made.status_code == 201 and made.json()["segment_tiers"] == ["supporter"]
    listed = await client.get("/api/v1/admin/newsletters", headers=headers)
    assert [i["segment_tiers"] for i in listed.json()] == [["supporter"]]


def _decoded(message: EmailMessage) -> str:
    """The message with its text parts decoded, whatever transfer encoding they use."""
    return str(message) + "".join(
        part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
    )


async def _on_list(client: AsyncClient, *members: Member) -> None:
    for member in members:
        response = await client.patch(
            "/api/v1/me", headers=member.headers, json={"newsletters": ["daily"]}
        )
        assert response.is_success, response.text


async def test_a_supporter_only_article_reaches_supporters_and_staff_only(
    mailroom: Mailroom,
    factory: Factory,
    articles: ArticleFactory,
    client: AsyncClient,
) -> None:
    standard_tier = await factory.tier("standard")
    supporter_tier = await factory.tier("supporter")
    newsletter = await mailroom.newsletter()
    editor = await factory.member(role=Role.editor, email="editor@example.com")
    article = await articles.make(editor, visibility="tiers", tiers=["supporter"], body=BODY)
    free = await factory.member(email="free@example.com")
    standard = await factory.subscriber(standard_tier)
    supporter = await factory.subscriber(supporter_tier)
    await _on_list(client, editor, free, standard, supporter)
    [anonymous] = await mailroom.subscribers(newsletter, 1, prefix="anon")
    issue = await mailroom.issue(newsletter, article_id=article.id, body_md="")
    await mailroom.send(issue)
    await mailroom.drain()
    # Send twice: the second is refused and nobody gets a second message.
    again = await client.post(
        f"/api/v1/admin/newsletters/{issue}/send", headers=(await mailroom.editor()).headers
    )
    assert again.status_code == 409
    await mailroom.drain()
    readers = {editor.user.email, free.user.email, standard.user.email, supporter.user.email}
    assert mailroom.per_address() == dict.fromkeys(readers | {anonymous}, 1)
    for received in mailroom.sink.handler.messages:
        [to] = received.rcpt_tos
        raw = _decoded(received.message)
        text = received.message.get_body(preferencelist=("plain",))
        assert text is not None
        if to in (supporter.user.email, editor.user.email):
            assert SENTINEL in raw, to
        else:
            assert SENTINEL not in raw, to
            assert "Free opening of the story." in raw
            action = "Upgrade" if to == standard.user.email else "Subscribe"
            assert f"{action} to keep reading" in text.get_content(), to


async def test_the_preview_shows_each_tier_what_it_gets(
    mailroom: Mailroom, factory: Factory, articles: ArticleFactory, client: AsyncClient
) -> None:
    await factory.tier("standard")
    await factory.tier("supporter")
    newsletter = await mailroom.newsletter()
    editor = await mailroom.editor()
    article = await articles.make(editor, visibility="tiers", tiers=["supporter"], body=BODY)
    issue = await mailroom.issue(newsletter, article_id=article.id, body_md="")
    preview = await client.get(f"/api/v1/admin/newsletters/{issue}/preview", headers=editor.headers)
    assert preview.status_code == 200
    body = preview.json()
    shown = {t["tier"]: t["html"] + t["text"] for t in body["tiers"]}
    assert set(shown) == {"standard", "supporter"}
    assert SENTINEL in shown["supporter"]
    assert SENTINEL not in shown["standard"] and "Upgrade to keep reading" in shown["standard"]
    for key in ("paid_html", "paid_text", "free_html", "free_text"):
        assert SENTINEL not in body[key], key


async def test_the_tier_list_is_read_from_the_snapshot_not_at_sending(
    mailroom: Mailroom, factory: Factory, articles: ArticleFactory, client: AsyncClient,
    app: FastAPI,
) -> None:  # fmt: skip
    """A supporter whose subscription ends after the snapshot still gets the issue as it was
    started for them."""
    tier = await factory.tier("supporter")
    newsletter = await mailroom.newsletter()
    editor = await mailroom.editor()
    article = await articles.make(editor, visibility="tiers", tiers=["supporter"], body=BODY)
    supporter = await factory.subscriber(tier)
    await _on_list(client, supporter)
    issue = await mailroom.issue(newsletter, article_id=article.id, body_md="")
    await mailroom.send(issue)
    [(paid, member, tier_list)] = (await deliveries(app, issue)).values()
    assert (paid, member, tier_list) == (True, True, str(tier.id))
    async with app.state.db.session() as session:
        sub = (
            await session.exec(select(Subscription).where(Subscription.user_id == supporter.id))
        ).one()
        sub.status = "canceled"
        session.add(sub)
    await mailroom.drain()
    [received] = mailroom.sink.handler.messages
    assert SENTINEL in _decoded(received.message)
