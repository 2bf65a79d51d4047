"""Search as readers use it: prefixes, stems, names, filters, order, totals and pages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from httpx import AsyncClient

from app.accounts.models import Role
from app.articles import search, search_index
from app.core.db import is_sqlite, utcnow
from app.core.pagination import encode_cursor
from tests.factories import ArticleFactory, Factory, Member


def slugs(answer: object) -> list[str]:
    assert isinstance(answer, dict), answer
    return [hit["article"]["slug"] for hit in answer["items"]]


async def found(
    client: AsyncClient, query: str, headers: dict[str, str] | None = None
) -> list[str]:
    response = await client.get(f"/api/v1/search?{query}", headers=headers or {})
    assert response.status_code == 200, response.text
    return slugs(response.json())


async def editor(factory: Factory, name: str = "") -> Member:
    return await factory.member(role=Role.editor, name=name)


async def test_the_last_word_matches_as_a_prefix(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory)
    await articles.make(staff, title="Lifeboat crew", slug="crew", body="Volunteers at sea.")
    assert await found(client, "q=lifeb") == ["crew"]
    assert await found(client, "q=lifeboat+cr") == ["crew"]
    # Only the last word is a prefix: the others are whole words.
    assert await found(client, "q=lifeb+crew") == []
    # One letter is no prefix (it would match half the index).
    assert await found(client, "q=l") == []


async def test_words_match_their_stems(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory)
    await articles.make(
        staff, title="Night crossings", slug="ferries", body="The ferries kept running late."
    )
    for query in ("ferry", "ferries", "run", "runs", "crossing"):
        assert await found(client, f"q={query}") == ["ferries"], query


async def test_tags_and_authors_are_found_by_name(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory, name="Marguerite Okonkwo")
    await articles.make(staff, title="Notes", slug="notes", body="Text.", tags=["Waterfront"])
    assert await found(client, "q=okonkwo") == ["notes"]
    assert await found(client, "q=marguerite+okon") == ["notes"]
    assert await found(client, "q=waterfront") == ["notes"]


async def test_renamed_tags_and_authors_are_found_by_their_new_names_only(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory, name="Marguerite Okonkwo")
    await articles.make(staff, title="Notes", slug="notes", body="Text.", tags=["Waterfront"])
    [tag] = (await client.get("/api/v1/admin/tags", headers=staff.headers)).json()
    renamed = await client.patch(
        f"/api/v1/admin/tags/{tag['id']}", json={"name": "Quayside"}, headers=staff.headers
    )
    assert renamed.status_code == 200, renamed.text
    moved = await client.patch(
        "/api/v1/me", json={"display_name": "Imogen Ashdown"}, headers=staff.headers
    )
    assert moved.status_code == 200, moved.text
    for gone in ("waterfront", "okonkwo", "marguerite"):
        assert await found(client, f"q={gone}") == [], gone
    for new in ("quayside", "ashdown", "imogen+ash"):
        assert await found(client, f"q={new}") == ["notes"], new


async def test_snippets_mark_the_words_and_escape_the_text(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory)
    await articles.make(
        staff, title="Tides", slug="tides", body="Spring <tides> & neap tides, tidal flats & more."
    )
    answer = await client.get("/api/v1/search?q=tid")
    [hit] = answer.json()["items"]
    assert hit["snippet"].strip() == (
        "Spring &lt;<mark>tides</mark>&gt; &amp; neap <mark>tides</mark>, <mark>tidal</mark> "
        "flats &amp; more."
    )


@pytest.mark.parametrize(
    ("source", "words", "snippet"),
    [
        # Words that are also the names of entities are marked in the text, never inside
        # the entities escaping makes.
        (
            'AMP & amp, "quot" it\'s x27 #lt &gt',
            ["amp", "quot", "x27", "lt", "gt", "s"],
            "<mark>AMP</mark> &amp; <mark>amp</mark>, &quot;<mark>quot</mark>&quot; "
            "it&#x27;<mark>s</mark> <mark>x27</mark> #<mark>lt</mark> &amp;<mark>gt</mark>",
        ),
        # A word begins after any character that is not a letter or digit, in any case; a
        # letter whose lower case is longer keeps the positions.
        (
            "R&D and r&d: #Dev İstanbul, brainstorm",
            ["d", "ist", "storm"],
            "R&amp;<mark>D</mark> and r&amp;<mark>d</mark>: #<mark>Dev</mark> "
            "<mark>İstanbul</mark>, brainstorm",
        ),
    ],
)
def test_highlight_marks_the_words_a_query_begins(
    source: str, words: list[str], snippet: str
) -> None:
    assert search.highlight(source, words) == snippet


async def test_filters_by_tag_author_and_dates(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    first, second = await editor(factory), await editor(factory)
    now = utcnow()
    await articles.make(
        first, title="Quarry old", slug="old", tags=["Stone"], published_at=now - timedelta(days=30)
    )
    await articles.make(
        second,
        title="Quarry new",
        slug="new",
        tags=["Gravel"],
        published_at=now - timedelta(days=1),
    )
    assert sorted(await found(client, "q=quarry")) == ["new", "old"]
    assert await found(client, "q=quarry&tag=stone") == ["old"]
    assert await found(client, "q=quarry&tag=no-such-tag") == []
    assert await found(client, f"q=quarry&author={second.id}") == ["new"]
    since = (now - timedelta(days=7)).isoformat().replace("+00:00", "Z")
    assert await found(client, f"q=quarry&from={since}") == ["new"]
    assert await found(client, f"q=quarry&to={since}") == ["old"]
    assert await found(client, f"q=quarry&from={since}&to={since}") == []


async def test_sort_by_relevance_puts_title_matches_first_and_by_date_newest_first(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory)
    now = utcnow()
    await articles.make(
        staff,
        title="Marmalade",
        slug="titled",
        body="Oranges.",
        published_at=now - timedelta(days=9),
    )
    await articles.make(
        staff,
        title="Breakfast",
        slug="mentioned",
        body="Toast with marmalade.",
        published_at=now - timedelta(days=1),
    )
    assert await found(client, "q=marmalade") == ["titled", "mentioned"]
    assert await found(client, "q=marmalade&sort=relevance") == ["titled", "mentioned"]
    assert await found(client, "q=marmalade&sort=date") == ["mentioned", "titled"]
    refused = await client.get("/api/v1/search?q=marmalade&sort=random")
    assert refused.status_code == 422


async def test_a_long_last_word_ranks_whole_words_first_on_sqlite_only(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, database_url: str
) -> None:
    staff = await editor(factory)
    now = utcnow()
    await articles.make(staff, title="Quayside", slug="whole", published_at=now - timedelta(days=9))
    await articles.make(
        staff, title="Quaysidewalk", slug="begun", published_at=now - timedelta(days=1)
    )
    # SQLite merges a prefix longer than its prefix indexes from every word it begins, so
    # whole words go first there (search_index._sqlite_variants); PostgreSQL ranks a
    # tier's whole words and prefixes together, newest first.
    expected = ["whole", "begun"] if is_sqlite(database_url) else ["begun", "whole"]
    assert await found(client, "q=quayside") == expected
    # Up to six letters the prefix is indexed, and newest comes first on both.
    assert await found(client, "q=quaysi") == ["begun", "whole"]


@pytest.mark.parametrize("dense", [1, 3], ids=["dense", "sparse"])
async def test_relevance_and_totals_hold_past_the_newest_entries_probed(
    client: AsyncClient,
    factory: Factory,
    articles: ArticleFactory,
    monkeypatch: pytest.MonkeyPatch,
    dense: int,
) -> None:
    # PostgreSQL walks the newest PROBE entries, then (a condition with DENSE matches among
    # them) the NEARBY entries below in key order, then the GIN indexes below those: with a
    # probe of two and one entry nearby, the tiers have matches in every stage (with DENSE
    # at 3, none is dense and the GIN indexes start below the probe). SQLite has no probe.
    monkeypatch.setattr(search_index, "PROBE", 2)
    monkeypatch.setattr(search_index, "NEARBY", 1)
    monkeypatch.setattr(search_index, "DENSE", dense)
    staff = await editor(factory)
    now = utcnow()
    made: list[tuple[str, dict[str, Any]]] = [
        ("body-new", {"title": "One", "body": "A lantern.", "excerpt": "Night."}),
        ("standfirst", {"title": "Two", "subtitle": "Lantern light", "tags": ["Lamps"]}),
        ("paid-body", {"title": "Three", "body": "Free.\n\n<!-- paywall -->\n\nA lantern."}),
        ("title-four", {"title": "Lantern four", "body": "Four."}),
        ("title-five", {"title": "Lantern five", "body": "Five.", "tags": ["Lamps"]}),
    ]
    for hours, (slug, fields) in enumerate(made, start=1):
        visibility = "paid" if slug == "paid-body" else "public"
        await articles.make(
            staff, slug=slug, visibility=visibility, published_at=now - timedelta(hours=hours),
            **fields,
        )  # fmt: skip
    ranked = ["title-four", "title-five", "standfirst", "body-new", "paid-body"]
    page = (await client.get("/api/v1/search?q=lantern", headers=staff.headers)).json()
    assert (slugs(page), page["total"]) == (ranked, 5)
    anonymous = (await client.get("/api/v1/search?q=lantern")).json()
    assert (slugs(anonymous), anonymous["total"]) == ([s for s in ranked if s != "paid-body"], 4)
    by_date = await found(client, "q=lantern&sort=date", staff.headers)
    assert by_date == [slug for slug, _ in made]
    tagged = await found(client, "q=lantern&tag=lamps", staff.headers)
    assert tagged == ["title-five", "standfirst"]
    seen, cursor = [], ""
    for _ in range(4):
        paged = await client.get(f"/api/v1/search?q=lant&limit=2{cursor}", headers=staff.headers)
        seen += slugs(paged.json())
        assert paged.json()["total"] == 5
        if paged.json()["next_cursor"] is None:
            break
        cursor = f"&cursor={paged.json()['next_cursor']}"
    assert seen == ranked


async def test_total_counts_matches_as_far_as_the_sort_pages_and_says_when_it_is_capped(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = await editor(factory)
    for n in range(4):
        await articles.make(staff, title=f"Turbine {n}", slug=f"turbine-{n}")
    page = (await client.get("/api/v1/search?q=turbine&limit=1")).json()
    assert (page["total"], page["total_capped"], len(page["items"])) == (4, False, 1)
    monkeypatch.setattr(search, "WINDOW", 2)
    monkeypatch.setattr(search, "TOTAL_CAP", 3)
    capped = (await client.get("/api/v1/search?q=turbine&limit=1")).json()
    assert (capped["total"], capped["total_capped"]) == (2, True)
    by_date = (await client.get("/api/v1/search?q=turbine&limit=1&sort=date")).json()
    assert (by_date["total"], by_date["total_capped"]) == (3, True)


async def test_date_pages_walk_every_match_once(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory)
    now = utcnow()
    for n in range(5):
        await articles.make(
            staff, title=f"Pylon {n}", slug=f"pylon-{n}", published_at=now - timedelta(hours=n)
        )
    seen: list[str] = []
    cursor = ""
    for _ in range(5):
        page = (await client.get(f"/api/v1/search?q=pylon&sort=date&limit=2{cursor}")).json()
        seen += slugs(page)
        if page["next_cursor"] is None:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert seen == [f"pylon-{n}" for n in range(5)]


async def test_relevance_pages_end_at_the_window_and_a_cursor_past_it_is_refused(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    staff = await editor(factory)
    for n in range(3):
        await articles.make(staff, title=f"Beacon {n}", slug=f"beacon-{n}")
    monkeypatch.setattr(search, "WINDOW", 2)
    first = (await client.get("/api/v1/search?q=beacon&limit=1")).json()
    second = await client.get(f"/api/v1/search?q=beacon&limit=1&cursor={first['next_cursor']}")
    assert len(slugs(second.json())) == 1
    assert second.json()["next_cursor"] is None
    past = await client.get(f"/api/v1/search?q=beacon&cursor={encode_cursor('r', '2')}")
    assert past.status_code == 400
    assert past.json()["code"] == "search_page_out_of_range"
    other_sort = await client.get(
        f"/api/v1/search?q=beacon&sort=date&cursor={first['next_cursor']}"
    )
    assert other_sort.status_code == 400
    assert other_sort.json()["code"] == "invalid_cursor"


async def test_unpublishing_takes_an_article_out_of_search(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory)
    article = await articles.make(staff, title="Withdrawn claim", slug="withdrawn")
    assert await found(client, "q=withdrawn") == ["withdrawn"]
    answer = await client.post(
        f"/api/v1/admin/articles/{article.id}/unpublish", headers=staff.headers
    )
    assert answer.status_code == 200, answer.text
    assert await found(client, "q=withdrawn&limit=3") == []


SYNTAX = [
    '"',
    '"harbour',
    "harbour*",
    "*",
    "NEAR(harbour tide)",
    "harbour OR tide",
    "title:harbour",
    "public_text : harbour",
    "harbour & tide",
    "harbour | tide",
    "!harbour",
    "(harbour",
    "harbour)",
    "harbour:*",
    "'harbour'",
    "\\",
    "-harbour",
    "^harbour",
    "harbour_tide",
    "\x00harbour",
    "ça va",
    "x" * 10_000,
    "harbour " * 1_300,
]


@pytest.mark.parametrize("query", SYNTAX, ids=range(len(SYNTAX)))
async def test_search_syntax_is_never_interpreted(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, query: str
) -> None:
    staff = await editor(factory)
    await articles.make(staff, title="Harbour tide", slug="tide", body="Harbour and tide.")
    for path in ("/api/v1/search", "/api/v1/search/suggest"):
        for extra in ({}, {"sort": "date"}, {"tag": query[:100]}):
            answer = await client.get(path, params={"q": query, **extra})
            assert answer.status_code < 500, (path, query)
            if answer.status_code >= 400:
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["code"]


async def test_suggested_tags_and_authors_have_live_articles_busiest_first(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    prolific = await editor(factory, name="Harriet Hale")
    occasional = await editor(factory, name="Harold Hunt")
    unpublished = await editor(factory, name="Harper Hill")
    await articles.make(prolific, title="One", slug="one", tags=["Harvest", "Harbour"])
    await articles.make(prolific, title="Two", slug="two", tags=["Harvest"])
    await articles.make(occasional, title="Three", slug="three", tags=["Harvest", "Harbour"])
    await articles.make(unpublished, title="Four", slug="four", tags=["Hardware"], status="draft")
    answer = (await client.get("/api/v1/search/suggest?q=har")).json()
    assert [t["name"] for t in answer["tags"]] == ["Harvest", "Harbour"]
    assert [a["name"] for a in answer["authors"]] == ["Harriet Hale", "Harold Hunt"]
    # One letter matches too; a word before the prefix must be in the name.
    assert [
        a["name"] for a in (await client.get("/api/v1/search/suggest?q=h")).json()["authors"]
    ] == ["Harriet Hale", "Harold Hunt"]
    assert (await client.get("/api/v1/search/suggest?q=harold+hu")).json()["authors"] == [
        {"id": occasional.id, "name": "Harold Hunt"}
    ]


async def test_quotes_and_operators_are_plain_word_separators(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory)
    await articles.make(staff, title="Harbour tide", slug="tide", body="Harbour and tide.")
    for query in ('"harbour"', "harbour*", "(harbour", "!harbour", "harbour|", "harbour:*"):
        assert await found(client, f"q={query}") == ["tide"], query
    # A column filter is two words, and no article has the word "title".
    assert await found(client, "q=title:harbour") == []
    # An operator is no operator: with a missing word, OR and NEAR match nothing.
    for query in ("NEAR(harbour+zzqqxx)", "harbour+OR+zzqqxx", "harbour+|+zzqqxx"):
        assert await found(client, f"q={query}") == [], query


async def test_suggest_gives_titles_tags_and_authors_of_live_articles(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    staff = await editor(factory, name="Hana Harwood")
    await articles.make(staff, title="Harvest fair", slug="fair", tags=["Harbourside"])
    await articles.make(staff, title="Harvest secrets", slug="draft", status="draft")
    answer = await client.get("/api/v1/search/suggest?q=har")
    assert answer.status_code == 200
    assert answer.json() == {
        "titles": [{"slug": "fair", "title": "Harvest fair"}],
        "tags": [{"slug": "harbourside", "name": "Harbourside"}],
        "authors": [{"id": staff.id, "name": "Hana Harwood"}],
    }
    two_words = (await client.get("/api/v1/search/suggest?q=harvest+fa")).json()
    assert two_words["titles"] == [{"slug": "fair", "title": "Harvest fair"}]
    assert two_words["tags"] == two_words["authors"] == []
    assert (await client.get("/api/v1/search/suggest?q=zz")).json() == {
        "titles": [],
        "tags": [],
        "authors": [],
    }
