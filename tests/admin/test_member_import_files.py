"""Member import with real export files: Ghost's and Substack's own column layouts and values."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.accounts.models import Role
from app.billing.models import Tier
from app.newsletter.models import NewsletterSubscription, Subscriber
from tests.admin.csvkit import comp_tiers, comps, fixture, post_csv
from tests.conftest import token_from_mail
from tests.factories import Factory, Member
from tests.smtp import SmtpSink


async def _newsletter(
    client: AsyncClient, admin: Member, slug: str, *, default_for_signups: bool = True
) -> None:
    created = await client.post(
        "/api/v1/admin/newsletters/lists",
        json={"slug": slug, "name": slug.title(), "default_for_signups": default_for_signups},
        headers=admin.headers,
    )
    assert created.status_code == 201, created.text


async def _on_list(client: AsyncClient, admin: Member, slug: str) -> set[str]:
    page = await client.get(
        f"/api/v1/admin/members?newsletter={slug}&limit=100", headers=admin.headers
    )
    return {m["email"] for m in page.json()["items"]}


async def _labels(client: AsyncClient, admin: Member) -> dict[str, list[str]]:
    page = await client.get("/api/v1/admin/members?limit=100", headers=admin.headers)
    return {m["email"]: m["labels"] for m in page.json()["items"]}


async def test_ghost_export_comps_only_the_members_ghost_comped(
    client: AsyncClient, factory: Factory, app: FastAPI
) -> None:
    admin = await factory.member(role=Role.admin)
    await _newsletter(client, admin, "daily")
    # Ghost names tiers by name: the comped row's "Premium" is this tier. Brian pays for
    # Premium at Ghost, which no import brings: he gets no comp of it.
    async with app.state.db.session() as session:
        session.add(Tier(name="Premium", slug="premium"))
    response = await post_csv(
        client, admin.headers, fixture("ghost-members.csv"), "?newsletter=daily"
    )
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["errors"] == []
    assert (report["rows"], report["created"], report["comped"]) == (4, 4, 1)
    granted = await comps(app)
    assert set(granted) == {"ada@example.com"}
    assert granted["ada@example.com"].granted_by_id == admin.id
    assert await comp_tiers(app) == {"ada@example.com": ["premium"]}
    assert await _on_list(client, admin, "daily") == {
        "ada@example.com",
        "brian@example.org",
        "dev@example.com",
    }
    labels = await _labels(client, admin)
    assert labels["ada@example.com"] == ["press", "vip"]
    assert labels["brian@example.org"] == ["Spring sale"]
    members = (
        await client.get("/api/v1/admin/members?q=brian&limit=5", headers=admin.headers)
    ).json()["items"]
    assert members[0]["display_name"] == "Brian O'Neil"
    assert members[0]["created_at"].startswith("2024-04-11T08:00:01")
    again = (
        await post_csv(client, admin.headers, fixture("ghost-members.csv"), "?newsletter=daily")
    ).json()
    assert (again["created"], again["updated"], again["unchanged"], again["comped"]) == (0, 0, 4, 0)


async def test_substack_export_subscribes_by_email_disabled_and_comps_paid_until_expiry(
    client: AsyncClient, factory: Factory, app: FastAPI
) -> None:
    admin = await factory.member(role=Role.admin)
    await _newsletter(client, admin, "daily")
    dry = (
        await post_csv(
            client, admin.headers, fixture("substack-emails.csv"), "?newsletter=daily&dry_run=true"
        )
    ).json()
    assert (dry["created"], dry["comped"], dry["errors"]) == (5, 2, [])
    assert await comps(app) == {}
    report = (
        await post_csv(client, admin.headers, fixture("substack-emails.csv"), "?newsletter=daily")
    ).json()
    assert (report["rows"], report["created"], report["comped"], report["errors"]) == (5, 5, 2, [])
    # grace turned email off at Substack; everyone else receives the newsletter.
    assert await _on_list(client, admin, "daily") == {
        "erin@example.com",
        "frank@example.org",
        "hal@example.com",
        "ivy@example.com",
    }
    # Paying readers keep what they paid for: comped until their expiry, never beyond.
    granted = await comps(app)
    assert set(granted) == {"erin@example.com", "grace@example.net"}
    assert granted["erin@example.com"].ends_at == datetime(2040, 9, 30, 14, 3, 11, tzinfo=UTC)
    assert granted["erin@example.com"].reason == (
        "imported: paid at previous platform until 2040-09-30"
    )
    assert granted["grace@example.net"].ends_at == datetime(2040, 2, 1, 8, 0, tzinfo=UTC)
    paid = (
        await client.get("/api/v1/admin/members?access=paid&limit=100", headers=admin.headers)
    ).json()["items"]
    assert {m["email"] for m in paid} == {"erin@example.com", "grace@example.net"}
    again = (
        await post_csv(client, admin.headers, fixture("substack-emails.csv"), "?newsletter=daily")
    ).json()
    assert (again["created"], again["updated"], again["unchanged"], again["comped"]) == (0, 0, 5, 0)


async def test_a_file_without_subscription_columns_is_a_list_of_subscribers(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    await _newsletter(client, admin, "daily")
    body = "email,name\nlist1@example.com,One\nlist2@example.com,Two\n"
    report = (await post_csv(client, admin.headers, body, "?newsletter=daily")).json()
    assert report["created"] == 2
    assert await _on_list(client, admin, "daily") == {"list1@example.com", "list2@example.com"}


async def test_boolean_cells_are_read_as_booleans(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    body = (
        "email,complimentary_plan,subscribed_to_emails\n"
        "b1@example.com,yes,no\n"
        "b2@example.com,0,1\n"
        "b3@example.com,,TRUE\n"
        "b4@example.com,gold,true\n"
        "b5@example.com,false,maybe\n"
    )
    report = (await post_csv(client, admin.headers, body, "?dry_run=true")).json()
    assert report["comped"] == 1 and report["created"] == 3
    errors = {e["row"]: e["reason"] for e in report["errors"]}
    assert set(errors) == {5, 6}
    assert "complimentary_plan" in errors[5] and "subscribed_to_emails" in errors[6]


async def test_naming_another_list_adds_it_to_existing_subscribers(
    client: AsyncClient, factory: Factory, smtp_sink: SmtpSink
) -> None:
    admin = await factory.member(role=Role.admin)
    await _newsletter(client, admin, "daily")
    await _newsletter(client, admin, "weekly", default_for_signups=False)
    member = await factory.member(email="member@example.com")
    chose = await client.patch(
        "/api/v1/me", json={"newsletters": ["daily"]}, headers=member.headers
    )
    assert chose.status_code == 200, chose.text
    await client.post(
        "/api/v1/newsletter/subscribe",
        json={"email": "only@example.com", "accept_terms": True, "newsletters": ["daily"]},
    )
    token = token_from_mail(smtp_sink, "only@example.com")
    assert (await client.post("/api/v1/newsletter/confirm", json={"token": token})).is_success
    body = (
        "email,subscribed_to_emails\n"
        "member@example.com,true\n"
        "only@example.com,true\n"
        "quiet@example.com,false\n"
        "new@example.com,true\n"
    )
    report = (await post_csv(client, admin.headers, body, "?newsletter=weekly")).json()
    # only@ had no account: the import makes one (created) and adds the list to its row.
    assert (report["created"], report["updated"], report["unchanged"]) == (3, 1, 0)
    assert await _on_list(client, admin, "weekly") == {
        "member@example.com",
        "only@example.com",
        "new@example.com",
    }
    assert await _on_list(client, admin, "daily") == {"member@example.com", "only@example.com"}
    detail = (await client.get(f"/api/v1/admin/members/{member.id}", headers=admin.headers)).json()
    assert sorted(detail["newsletters"]) == ["daily", "weekly"]
    again = (await post_csv(client, admin.headers, body, "?newsletter=weekly")).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 4)


async def test_a_reader_who_left_a_list_here_stays_off_it(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    await _newsletter(client, admin, "daily")
    reader = await factory.member(email="left@example.com")
    for chosen in (["daily"], []):
        changed = await client.patch(
            "/api/v1/me", json={"newsletters": chosen}, headers=reader.headers
        )
        assert changed.status_code == 200, changed.text
    body = "email,subscribed_to_emails\nleft@example.com,true\n"
    report = (await post_csv(client, admin.headers, body, "?newsletter=daily")).json()
    assert report["unchanged"] == 1
    assert await _on_list(client, admin, "daily") == set()


async def test_a_bounced_address_is_not_put_on_another_list(
    client: AsyncClient, factory: Factory, app: FastAPI
) -> None:
    admin = await factory.member(role=Role.admin)
    await _newsletter(client, admin, "daily")
    async with app.state.db.session() as session:
        session.add(Subscriber(email="bounced@example.org", status="bounced", source="signup"))
    body = "email,subscribed_to_emails\nbounced@example.org,true\n"
    report = (await post_csv(client, admin.headers, body, "?newsletter=daily")).json()
    assert (report["created"], report["errors"]) == (1, [])
    async with app.state.db.session() as session:
        links = (await session.exec(select(NewsletterSubscription))).all()
    assert links == []
