"""Bad input is a 4xx with a stable code, never a 500: out-of-range ids and dates (review L3,
fuzzing), control characters in text (L5, L6), unknown and repeated query parameters (B7),
and unique values already taken (fuzzing)."""

from __future__ import annotations

import feedparser
import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from app.accounts.models import Role
from app.articles.models import Article
from tests.factories import ArticleFactory, Factory

HUGE = "99999999999999999999999"
PAST_INT4 = str(2**31)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/v1/articles?from=0001-01-01T00:00:00%2B01:00", 422),
        ("/api/v1/articles?to=9999-12-31T23:59:59-05:00", 422),
        ("/api/v1/articles?cursor=WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzAxOjAwIiwxXQ", 400),
        (f"/api/v1/articles?author={PAST_INT4}", 422),
        (f"/api/v1/articles/open/comments?parent={HUGE}", 422),
        (f"/api/v1/articles/open/comments?parent={PAST_INT4}", 422),
        # A cursor holding an id past the id columns' range.
        ("/api/v1/articles/open/comments?cursor=WzIxNDc0ODM2NDhd", 400),
    ],
)
async def test_out_of_range_reader_input_is_a_4xx(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, path: str, status: int
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, title="Open")
    response = await client.get(path)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", f"/api/v1/comments/{HUGE}/like", None),
        ("POST", f"/api/v1/comments/{PAST_INT4}/report", {"reason": "spam"}),
        ("GET", f"/api/v1/admin/articles/{HUGE}", None),
        ("GET", f"/api/v1/admin/members/{PAST_INT4}", None),
        ("GET", f"/api/v1/admin/audit?actor={HUGE}", None),
        ("GET", "/api/v1/admin/stats?from=9999-01-01&to=9999-12-31", None),
        ("GET", f"/api/v1/admin/members?plan={PAST_INT4}", None),
        ("POST", "/api/v1/billing/checkout", {"plan_id": 2**31}),
        ("POST", "/api/v1/admin/plans", {"name": "Big", "amount": 100, "sort_order": 2**40}),
        ("POST", "/api/v1/admin/newsletters", {"newsletter_id": 2**31, "body_md": "x"}),
    ],
)
async def test_out_of_range_ids_are_422_for_signed_in_callers(
    client: AsyncClient, factory: Factory, method: str, path: str, body: object
) -> None:
    admin = await factory.member(role=Role.admin)
    response = await client.request(method, path, json=body, headers=admin.headers)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("title", ["Ctrl \u0001 char", "   ", "\n\t", "Bell\x07", "\u2028"])
async def test_titles_with_control_characters_or_only_blanks_are_refused(
    client: AsyncClient, factory: Factory, title: str
) -> None:
    editor = await factory.member(role=Role.editor)
    response = await client.post(
        "/api/v1/admin/articles", headers=editor.headers, json={"title": title, "body_md": "x"}
    )
    assert response.status_code == 422, response.text


async def test_a_stored_control_character_never_breaks_the_feed(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """Rows written before the text rules (or by hand) still make a valid feed."""
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, title="Clean title")
    async with app.state.db.session() as session:
        await session.exec(
            update(Article)
            .where(Article.id == article.id)  # type: ignore[arg-type]
            .values(title="Ctrl \x01 char", excerpt="Bad \x0b excerpt")
        )
    response = await client.get("/feed.xml")
    assert response.status_code == 200
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0
    assert [e.title for e in parsed.entries] == ["Ctrl  char"]


@pytest.mark.parametrize(
    "name", ["Bob\r\nBcc: spam@evil.example", "Tab\there", "Nul\x00"], ids=["crlf", "tab", "nul"]
)
async def test_line_breaks_in_display_names_are_refused(
    client: AsyncClient, factory: Factory, name: str
) -> None:
    signup = await client.post(
        "/api/v1/auth/signup",
        json={
            "email": "new@example.com",
            "password": "long enough password",
            "accept_terms": True,
            "display_name": name,
        },
    )
    assert signup.status_code == 422
    reader = await factory.member()
    patch = await client.patch("/api/v1/me", headers=reader.headers, json={"display_name": name})
    assert patch.status_code == 422


async def test_line_breaks_in_newsletter_subjects_and_names_are_refused(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    listed = await client.post(
        "/api/v1/admin/newsletters/lists",
        headers=editor.headers,
        json={"slug": "daily", "name": "Daily\nBrief"},
    )
    assert listed.json()["name"] == "Daily Brief"
    for field in ("subject", "preheader"):
        issue = await client.post(
            "/api/v1/admin/newsletters",
            headers=editor.headers,
            json={"newsletter_id": listed.json()["id"], "body_md": "x", field: "Hi\r\nBcc: x@y"},
        )
        assert issue.status_code == 422, field
    sender = await client.put(
        f"/api/v1/admin/newsletters/lists/{listed.json()['id']}",
        headers=editor.headers,
        json={"slug": "daily", "name": "Daily", "sender_name": "Desk\r\nX-Evil: 1"},
    )
    assert sender.status_code == 422


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/api/v1/articles?junk=1", "unknown_parameter"),
        ("/api/v1/articles?tag=a&tag=b", "repeated_parameter"),
        ("/api/v1/articles?month=10", "month_without_year"),
        ("/api/v1/search?q=harbour&visibility=paid", "unknown_parameter"),
        ("/api/v1/search?q=harbour&tag=a&tag=b", "repeated_parameter"),
        ("/api/v1/search/suggest?q=ha&limit=3", "unknown_parameter"),
        ("/feed.xml?tag=politics", "unknown_parameter"),
        ("/api/v1/articles/open?include=body", "unknown_parameter"),
        ("/api/v1/tags?limit=5", "unknown_parameter"),
    ],
)
async def test_query_parameters_that_would_be_ignored_are_refused(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, path: str, code: str
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, title="Open")
    # Once cached, the page must still refuse what its route refuses.
    assert (await client.get("/api/v1/articles/open")).status_code == 200
    response = await client.get(path)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code


async def test_staff_list_filters_that_do_not_exist_are_refused(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    response = await client.get("/api/v1/admin/articles?q=budget", headers=editor.headers)
    assert response.status_code == 422
    assert response.json()["code"] == "unknown_parameter"


async def test_unique_values_already_taken_are_409(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    plan = {"name": "Monthly", "amount": 800, "stripe_price_id": "price_taken"}
    first = await client.post("/api/v1/admin/plans", headers=admin.headers, json=plan)
    assert first.status_code == 201, first.text
    again = await client.post("/api/v1/admin/plans", headers=admin.headers, json=plan)
    assert again.status_code == 409
    assert again.json()["code"] == "already_exists"
    other = await client.post(
        "/api/v1/admin/plans", headers=admin.headers, json={"name": "Yearly", "amount": 8000}
    )
    # A plan's price, once set, is what was sold: it never changes (review I8).
    moved = await client.patch(
        f"/api/v1/admin/plans/{other.json()['id']}",
        headers=admin.headers,
        json={"stripe_price_id": "price_taken"},
    )
    assert moved.status_code == 422 and moved.json()["code"] == "price_immutable"
    lists = "/api/v1/admin/newsletters/lists"
    daily = await client.post(lists, headers=admin.headers, json={"slug": "daily", "name": "D"})
    weekly = await client.post(lists, headers=admin.headers, json={"slug": "weekly", "name": "W"})
    dup = await client.post(lists, headers=admin.headers, json={"slug": "daily", "name": "D2"})
    assert dup.status_code == 409
    renamed = await client.put(
        f"{lists}/{weekly.json()['id']}", headers=admin.headers, json={"slug": "daily", "name": "W"}
    )
    assert renamed.status_code == 409
    assert daily.status_code == 201


@pytest.mark.parametrize("body", [{"name": None}, {"sort_order": 2**40}, {"active": None}])
async def test_plan_edits_the_columns_cannot_hold_are_422(
    client: AsyncClient, factory: Factory, body: dict[str, object]
) -> None:
    admin = await factory.member(role=Role.admin)
    plan = await client.post(
        "/api/v1/admin/plans", headers=admin.headers, json={"name": "Monthly", "amount": 800}
    )
    response = await client.patch(
        f"/api/v1/admin/plans/{plan.json()['id']}", headers=admin.headers, json=body
    )
    assert response.status_code == 422, response.text
