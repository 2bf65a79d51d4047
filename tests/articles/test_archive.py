"""The archive: cursor pagination, filters, tags, authors, months, feeds and sitemap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import feedparser
import pytest
from httpx import AsyncClient

from app.accounts.models import Role
from app.core.db import utcnow
from tests.factories import ArticleFactory, Factory


async def test_walking_the_archive_returns_each_article_once_while_new_ones_publish(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    base = utcnow() - timedelta(days=30)
    made = []
    for i in range(23):
        # Pairs share a timestamp, so the (published_at, id) tie-break is exercised.
        made.append(await articles.make(editor, published_at=base + timedelta(hours=i // 2)))
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        url = "/api/v1/articles?limit=5" + (f"&cursor={cursor}" if cursor else "")
        page = (await client.get(url)).json()
        seen.extend(item["slug"] for item in page["items"])
        pages += 1
        # Publishing during the walk must neither repeat nor skip what was already there.
        await articles.make(editor)
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert pages == 5
    assert len(seen) == len(set(seen))
    assert set(seen) == {a.slug for a in made}


async def test_limit_is_clamped_and_bad_cursor_is_400(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor)
    assert (await client.get("/api/v1/articles?limit=1000000")).status_code == 200
    for bad in ("bad-cursor", "e30", "WzEsMiwzXQ", "W251bGwsMV0"):
        response = await client.get(f"/api/v1/articles?cursor={bad}")
        assert response.status_code == 400, bad
        assert response.json()["code"] == "invalid_cursor"
    assert (await client.get("/api/v1/articles?limit=0")).status_code == 422
    assert (await client.get("/api/v1/articles?author=99999999999999999999")).status_code == 422


async def public_lists(
    client: AsyncClient,
) -> tuple[list[tuple[str, int]], list[tuple[str, int]], list[tuple[int, int, int]]]:
    """The tags, authors and months lists as they come, each entry with its count."""
    tags = (await client.get("/api/v1/tags")).json()
    authors = (await client.get("/api/v1/authors")).json()
    months = (await client.get("/api/v1/archive")).json()
    return (
        [(t["slug"], t["articles"]) for t in tags],
        [(a["name"], a["articles"]) for a in authors],
        [(m["year"], m["month"], m["articles"]) for m in months],
    )


async def test_filters_tags_authors_and_months(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    alice = await factory.member(role=Role.editor, name="Alice")
    bob = await factory.member(role=Role.author, name="Bob")
    march = datetime(2026, 3, 10, tzinfo=UTC)
    april = datetime(2026, 4, 2, tzinfo=UTC)
    a1 = await articles.make(alice, tags=["Economy"], published_at=march, visibility="paid")
    await articles.make(alice, tags=["Economy", "Europe"], published_at=april)
    a3 = await articles.make(alice, tags=["Europe"], published_at=april, author_ids=[bob.id])

    def slugs(response: object) -> set[str]:
        return {item["slug"] for item in response.json()["items"]}  # type: ignore[attr-defined]

    assert len(slugs(await client.get("/api/v1/articles?tag=economy"))) == 2
    assert slugs(await client.get(f"/api/v1/articles?author={bob.id}")) == {a3.slug}
    assert slugs(await client.get("/api/v1/articles?visibility=paid")) == {a1.slug}
    assert slugs(await client.get("/api/v1/articles?year=2026&month=3")) == {a1.slug}
    assert len(slugs(await client.get("/api/v1/articles?from=2026-04-01T00:00:00Z"))) == 2
    assert await public_lists(client) == (
        [("economy", 2), ("europe", 2)],
        [("Alice", 2), ("Bob", 1)],
        [(2026, 4, 2), (2026, 3, 1)],
    )


async def test_tag_author_and_month_counts_take_live_articles_only(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    alice = await factory.member(role=Role.editor, name="Alice")
    bob = await factory.member(role=Role.author, name="Bob")
    carol = await factory.member(role=Role.author, name="Carol")
    march, april = datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 4, 2, tzinfo=UTC)
    await articles.make(alice, tags=["Economy"], published_at=march)
    # Scheduled for a time that has come: live although no worker flipped it yet.
    await articles.make(
        alice, tags=["Economy", "Europe"], status="scheduled", published_at=april,
        author_ids=[alice.id, bob.id],
    )  # fmt: skip
    # Not live: a draft, an archived article, one scheduled for later, one with no time.
    await articles.make(alice, tags=["Economy"], status="draft")
    await articles.make(bob, tags=["Europe"], status="archived", published_at=april)
    later = utcnow() + timedelta(days=2)
    await articles.make(carol, tags=["Economy", "Hidden"], status="scheduled", published_at=later)
    await articles.make(carol, tags=["Hidden"], status="scheduled", published_at=None)
    assert await public_lists(client) == (
        [("economy", 2), ("europe", 1)],
        [("Alice", 2), ("Bob", 1)],
        [(2026, 4, 1), (2026, 3, 1)],
    )


async def test_month_counts_span_years_and_skip_empty_months(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    for moment in (
        datetime(2024, 11, 30, 23, 59, tzinfo=UTC),
        datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 1, 1, tzinfo=UTC),
        datetime(2025, 3, 5, tzinfo=UTC),
    ):
        await articles.make(editor, published_at=moment)
    _, _, months = await public_lists(client)
    assert months == [(2025, 3, 1), (2025, 1, 2), (2024, 12, 1), (2024, 11, 1)]


async def test_feed_is_valid_rss_with_excerpts_only(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(
        editor, title="Open & shut", body="Free part.\n\n<!-- paywall -->\n\nHIDDEN"
    )
    await articles.make(editor, title="Draft one", status="draft")
    response = await client.get("/feed.xml")
    assert response.headers["content-type"].startswith("application/rss+xml")
    parsed = feedparser.parse(response.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert [e.title for e in parsed.entries] == ["Open & shut"]
    assert parsed.entries[0].summary == "Free part."
    assert "HIDDEN" not in response.text


async def test_sitemap_lists_live_articles_only(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    live = await articles.make(editor)
    draft = await articles.make(editor, status="draft")
    later = await articles.make(
        editor, status="scheduled", published_at=utcnow() + timedelta(days=2)
    )
    text = (await client.get("/sitemap.xml")).text
    assert f"https://reader.example/{live.slug}</loc>" in text
    assert draft.slug not in text and later.slug not in text


@pytest.mark.parametrize(
    "query",
    ['"', "'", "*", "a*", "NEAR(a b)", "a OR b", "(", ")", "((a", "a AND", "-a", "^a",
     "col:a", "{a b}: c", "a\x00b", "😀", "%", "_", "\\", "' OR 1=1 --", "x" * 200],
)  # fmt: skip
async def test_search_syntax_never_breaks(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, query: str
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, title="Near the harbour, or the bay")
    response = await client.get("/api/v1/search", params={"q": query})
    assert response.status_code == 200, response.text
    assert "items" in response.json()


async def test_search_too_long_query_is_422(client: AsyncClient) -> None:
    response = await client.get("/api/v1/search", params={"q": "x" * 10_000})
    assert response.status_code == 422


async def test_search_ranks_and_pages(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    for i in range(5):
        await articles.make(editor, title=f"Tide tables {i}", body="The tide rises.")
    await articles.make(editor, title="Unrelated", body="Nothing here.")
    first = (await client.get("/api/v1/search?q=tide&limit=3")).json()
    assert len(first["items"]) == 3 and first["next_cursor"]
    second = (
        await client.get(f"/api/v1/search?q=tide&limit=3&cursor={first['next_cursor']}")
    ).json()
    slugs = [h["article"]["slug"] for h in first["items"] + second["items"]]
    assert len(slugs) == len(set(slugs)) == 5


async def test_search_never_reveals_drafts_or_scheduled_articles(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """Security review L10: unpublished words matched, and `next_cursor` counted them."""
    editor = await factory.member(role=Role.editor)
    for n in range(2):
        await articles.make(
            editor, title=f"Deal {n}", body="Secret deal zqx123 closes.", status="draft"
        )
    await articles.make(
        editor,
        title="Zqx123 takeover",
        body="Coming soon.",
        status="scheduled",
        published_at=utcnow() + timedelta(days=1),
    )
    for headers in ({}, editor.headers):
        hidden = await client.get("/api/v1/search?q=zqx123&limit=1", headers=headers)
        nothing = await client.get("/api/v1/search?q=nowordlikethis&limit=1", headers=headers)
        empty: dict[str, object] = {
            "items": [],
            "next_cursor": None,
            "total": 0,
            "total_capped": False,
        }
        assert hidden.json() == nothing.json() == empty
    await articles.make(editor, title="Published", body="The zqx123 deal, now public.")
    # Another page size: the answers above are cached, and the factory skips the staff API.
    found = await client.get("/api/v1/search?q=zqx123&limit=5")
    assert [hit["article"]["slug"] for hit in found.json()["items"]] == ["published"]
    assert found.json()["next_cursor"] is None
