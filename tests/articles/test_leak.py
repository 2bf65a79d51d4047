"""The leak test: gated sentinels never reach a reader without access, on any surface.

Keep this test growing: every new public endpoint belongs in SURFACES.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlmodel import select

from app.accounts.models import Role
from app.articles.live import NEXT_CHANGE_SQL
from app.articles.models import Article
from app.billing.models import Tier
from app.core.cache.freshness import CacheFreshness
from app.core.db import utcnow
from tests.factories import ArticleFactory, Factory, Member

PAID_SENTINEL = f"paidsentinel{uuid.uuid4().hex[:10]}"
MEMBERS_SENTINEL = f"membersentinel{uuid.uuid4().hex[:10]}"


def body(sentinel: str, kind: str = "marker") -> str:
    """A gated body with `sentinel` behind the paywall: cut at a marker, or automatically."""
    if kind == "short":
        # Without a marker and with fewer paragraphs than the preview takes (security
        # review H1): the whole article used to be served as its free part.
        return (
            "A free paragraph about the harbour.\n\nThe middle goes on a little.\n\n"
            f"The end reveals {sentinel}."
        )
    if kind == "blocks":
        # Tables, lists and code before the N-th paragraph used to be free, at any length;
        # now a block past the preview's size budget ends it.
        rows = "".join(f"| {sentinel} row {n} |\n" for n in range(80))
        return (
            f"A free paragraph about the harbour.\n\n| col |\n|---|\n{rows}\n"
            f"- {sentinel} in a list\n- and more\n\n```\n{sentinel} in code\n```\n\n"
            f"Two.\n\nThree.\n\n{sentinel} in the fourth paragraph."
        )
    return (
        "## Opening\n\nA free paragraph that anyone may read about the harbour.\n\n"
        "<!-- paywall -->\n\n"
        f"## Behind the wall\n\nThe secret word is {sentinel} and it must not leak.\n\n"
        f"Another gated paragraph mentioning {sentinel} twice: {sentinel}."
    )


def surfaces(
    paid_slug: str, members_slug: str, sentinel: str, author: int | None = None
) -> list[tuple[str, str, dict[str, str]]]:
    """Every public request a reader can make, with the sentinel wherever input is taken;
    `author` wrote the gated article."""
    return [
        ("GET", f"/api/v1/articles/{paid_slug}", {}),
        ("GET", f"/api/v1/articles/{members_slug}", {}),
        ("HEAD", f"/api/v1/articles/{paid_slug}", {}),
        ("GET", f"/api/v1/articles/{paid_slug}?include=body&expand=content&format=md", {}),
        ("GET", f"/api/v1/articles/{paid_slug}.md", {}),
        ("GET", f"/api/v1/articles/{paid_slug}", {"If-None-Match": '"whatever"'}),
        ("GET", "/api/v1/articles", {}),
        ("GET", "/api/v1/articles?limit=100&include=body", {}),
        ("GET", "/api/v1/articles?visibility=paid", {}),
        ("GET", "/api/v1/articles?tag=harbour", {}),
        ("GET", f"/api/v1/articles?author={author}", {}),
        ("GET", f"/api/v1/articles?author={author}&tag=harbour&limit=1", {}),
        ("GET", f"/api/v1/search?q={sentinel}", {}),
        ("GET", f"/api/v1/search?q={PAID_SENTINEL}", {}),
        ("GET", f"/api/v1/search?q={MEMBERS_SENTINEL}", {}),
        ("GET", "/api/v1/search?q=harbour", {}),
        ("GET", "/api/v1/search?q=secret+word", {}),
        # Search (issue 18): prefixes, stems, suggestions and filters of the gated words.
        ("GET", f"/api/v1/search?q={sentinel[:9]}", {}),
        ("GET", f"/api/v1/search?q={MEMBERS_SENTINEL[:9]}", {}),
        ("GET", f"/api/v1/search/suggest?q={MEMBERS_SENTINEL[:9]}", {}),
        ("GET", f"/api/v1/search?q=secret+{sentinel[:9]}", {}),
        ("GET", f"/api/v1/search?q={sentinel}s", {}),
        ("GET", f"/api/v1/search?q={sentinel}ing&sort=date", {}),
        ("GET", "/api/v1/search?q=revealing", {}),
        ("GET", f"/api/v1/search?q={sentinel}&sort=date&tag=harbour", {}),
        ("GET", f"/api/v1/search?q={sentinel[:9]}&from=2000-01-01T00:00:00Z", {}),
        ("GET", "/api/v1/search?q=harb&sort=date&tag=harbour", {}),
        ("GET", f"/api/v1/search/suggest?q={sentinel}", {}),
        ("GET", f"/api/v1/search/suggest?q={sentinel[:4]}", {}),
        ("GET", f"/api/v1/search/suggest?q={sentinel[:9]}", {}),
        ("GET", "/api/v1/search/suggest?q=secret+wo", {}),
        ("GET", "/api/v1/search/suggest?q=harb", {}),
        ("GET", f"/api/v1/articles/{paid_slug}/comments", {}),
        ("GET", f"/api/v1/articles/{members_slug}/comments?order=top", {}),
        ("GET", "/api/v1/billing/plans", {}),
        ("GET", "/api/v1/tags", {}),
        ("GET", "/api/v1/authors", {}),
        ("GET", "/api/v1/archive", {}),
        ("GET", "/feed.xml", {}),
        ("GET", "/sitemap.xml", {}),
        ("GET", f"/api/v1/articles/{sentinel}", {}),
        ("GET", "/api/v1/articles?cursor=bad-cursor", {}),
        ("GET", "/openapi.json", {}),
    ]


def assert_clean(response: Response, *sentinels: str) -> None:
    text = response.text + " ".join(f"{k}: {v}" for k, v in response.headers.items())
    for sentinel in sentinels:
        assert sentinel not in text, f"{response.request.method} {response.request.url} leaked"


@pytest.mark.parametrize("kind", ["marker", "short", "blocks"])
@pytest.mark.parametrize("reader", ["anonymous", "member"])
async def test_no_gated_text_reaches_readers_without_access(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, reader: str, kind: str
) -> None:
    editor = await factory.member(role=Role.editor)
    paid = await articles.make(
        editor,
        title="Harbour report",
        body=body(PAID_SENTINEL, kind),
        visibility="paid",
        tags=["harbour"],
    )
    members = await articles.make(
        editor,
        title="Harbour notes",
        body=body(MEMBERS_SENTINEL, kind),
        visibility="members",
        tags=["harbour"],
    )
    # A free member may read the members article, so only the paid sentinel is hidden then.
    hidden = [PAID_SENTINEL, MEMBERS_SENTINEL] if reader == "anonymous" else [PAID_SENTINEL]
    member: Member | None = await factory.member() if reader == "member" else None
    headers = member.headers if member else {}
    for method, path, extra in surfaces(paid.slug, members.slug, PAID_SENTINEL, paid.created_by_id):
        response = await client.request(method, path, headers={**headers, **extra})
        assert response.status_code < 500, path
        assert_clean(response, *hidden)
    # The searches above must still have found the articles by their public words.
    for query in ("harbour", "harb", "harbours"):
        found = await client.get(f"/api/v1/search?q={query}", headers=headers)
        assert {hit["article"]["slug"] for hit in found.json()["items"]} == {
            paid.slug,
            members.slug,
        }
    # Gated words find no article this reader may not read: not whole, as a prefix, stemmed
    # or filtered, and never as a suggestion (suggestions are public: no title by its body).
    forbidden = {paid.slug, members.slug} if reader == "anonymous" else {paid.slug}
    stems = "secrets words"  # "The secret word is" stands behind the wall (marker kind)
    for sentinel in hidden:
        for query in (sentinel, sentinel[:9], f"{sentinel}s", f"harbour {sentinel[:9]}", stems):
            for also in ("", "&sort=date", "&tag=harbour"):
                found = await client.get(f"/api/v1/search?q={query}{also}", headers=headers)
                hits = {hit["article"]["slug"] for hit in found.json()["items"]}
                assert not hits & forbidden, (query, also)
    for sentinel in (PAID_SENTINEL, MEMBERS_SENTINEL):
        suggested = await client.get(f"/api/v1/search/suggest?q={sentinel[:9]}", headers=headers)
        assert suggested.json()["titles"] == [], sentinel
    # A member may read the members article: its gated words are found, the paid one's not.
    if reader == "member":
        found = await client.get(f"/api/v1/search?q={MEMBERS_SENTINEL[:9]}", headers=headers)
        assert [hit["article"]["slug"] for hit in found.json()["items"]] == [members.slug]


async def test_entitled_reader_does_find_and_read_the_gated_text(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """The control for the leak test: the sentinel is really there for readers with access."""
    editor = await factory.member(role=Role.editor)
    paid = await articles.make(editor, body=body(PAID_SENTINEL), visibility="paid")
    article = await client.get(f"/api/v1/articles/{paid.slug}", headers=editor.headers)
    assert PAID_SENTINEL in article.json()["content_html"]
    found = await client.get(f"/api/v1/search?q={PAID_SENTINEL}", headers=editor.headers)
    assert [hit["article"]["slug"] for hit in found.json()["items"]] == [paid.slug]
    # Found by a prefix of the gated word too (snippets come from the public fields on both
    # databases: README, Search), and by stems of its plain words (the sentinel's digits make
    # PostgreSQL's parser keep it whole, unstemmed).
    for query in (PAID_SENTINEL[:9], "secrets words"):
        found = await client.get(f"/api/v1/search?q={query}", headers=editor.headers)
        assert [hit["article"]["slug"] for hit in found.json()["items"]] == [paid.slug], query


TIER_SENTINEL = f"tiersentinel{uuid.uuid4().hex[:10]}"
EMBARGO_SENTINEL = f"embargosentinel{uuid.uuid4().hex[:10]}"
AGED_SENTINEL = f"agedsentinel{uuid.uuid4().hex[:10]}"


async def _ruled_articles(
    factory: Factory, articles: ArticleFactory, editor: Member
) -> dict[str, Article]:
    """A supporter-only article, a paid one embargoed until tomorrow, and a public one whose
    automatic paywall closed three days after it went out, five days ago."""
    await factory.tier("supporter")
    now = utcnow()
    return {
        TIER_SENTINEL: await articles.make(
            editor, title="Harbour supporters", body=body(TIER_SENTINEL), visibility="tiers",
            tiers=["supporter"], tags=["harbour"],
        ),
        EMBARGO_SENTINEL: await articles.make(
            editor, title="Harbour embargo", body=body(EMBARGO_SENTINEL), visibility="paid",
            free_after=now + timedelta(days=1), tags=["harbour"],
        ),
        AGED_SENTINEL: await articles.make(
            editor, title="Harbour archive", body=body(AGED_SENTINEL), gated_after_days=3,
            published_at=now - timedelta(days=5), tags=["harbour"],
        ),
    }  # fmt: skip


@pytest.mark.parametrize("reader", ["anonymous", "member", "standard"])
async def test_tier_and_time_rules_leak_nothing_on_any_surface(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, reader: str
) -> None:
    editor = await factory.member(role=Role.editor)
    made = await _ruled_articles(factory, articles, editor)
    standard = await factory.tier("standard")
    member = {
        "anonymous": None,
        "member": await factory.member(),
        "standard": await factory.subscriber(standard),
    }[reader]
    headers = member.headers if member else {}
    # A standard subscriber is paid: the embargoed and aged paid articles are theirs.
    hidden = [TIER_SENTINEL] if reader == "standard" else list(made)
    for sentinel, article in made.items():
        for method, path, extra in surfaces(
            article.slug, article.slug, sentinel, article.created_by_id
        ):
            response = await client.request(method, path, headers={**headers, **extra})
            assert response.status_code < 500, path
            assert_clean(response, *hidden)
    for sentinel in hidden:
        for query in (sentinel, sentinel[:9], f"harbour {sentinel[:9]}"):
            found = await client.get(f"/api/v1/search?q={query}", headers=headers)
            assert found.json()["items"] == [], query
    # Their public words still find them.
    found = await client.get("/api/v1/search?q=harbour&limit=50", headers=headers)
    assert {hit["article"]["slug"] for hit in found.json()["items"]} == {
        a.slug for a in made.values()
    }


async def test_a_supporter_reads_the_tier_article_and_staff_read_all(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """The control: the sentinels are there for readers entitled to them."""
    editor = await factory.member(role=Role.editor)
    made = await _ruled_articles(factory, articles, editor)
    async with factory.db.session(write=False) as session:
        tier = (await session.exec(select(Tier).where(Tier.slug == "supporter"))).one()
    supporter = await factory.subscriber(tier)
    for reader, readable in ((editor, list(made)), (supporter, list(made))):
        for sentinel in readable:
            page = await client.get(
                f"/api/v1/articles/{made[sentinel].slug}", headers=reader.headers
            )
            assert sentinel in page.json()["content_html"], sentinel


async def test_an_article_closing_by_age_leaves_every_surface_with_the_cache(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """Public until its automatic paywall closes, with no write at that moment: the cached
    answers go at the freshness check after the time, and the sentinel with them."""
    editor = await factory.member(role=Role.editor)
    closes = utcnow() + timedelta(seconds=1)
    article = await articles.make(
        editor,
        body=body(AGED_SENTINEL),
        gated_after_days=1,
        published_at=closes - timedelta(days=1),
    )
    freshness = CacheFreshness(app.state.db.reads, app.state.response_cache, NEXT_CHANGE_SQL)
    assert await freshness.check() is False
    page = await client.get(f"/api/v1/articles/{article.slug}")
    assert AGED_SENTINEL in page.json()["content_html"]
    while utcnow() <= closes:
        await asyncio.sleep(0.05)
    await freshness.check()
    for method, path, extra in surfaces(
        article.slug, article.slug, AGED_SENTINEL, article.created_by_id
    ):
        response = await client.request(method, path, headers=extra)
        assert response.status_code < 500, path
        assert_clean(response, AGED_SENTINEL)
