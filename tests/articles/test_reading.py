"""Reading articles over HTTP: gating by level, invisible drafts, redirects, caching, HEAD."""

from __future__ import annotations

from datetime import timedelta

import pytest
from httpx import AsyncClient

from app.accounts.models import Role
from app.articles.schemas import ArticlePublic, ArticleTeaser
from app.core.cache import etag_of
from app.core.db import utcnow
from tests.factories import ArticleFactory, Factory

BODY = "Free opening paragraph.\n\n<!-- paywall -->\n\nGATED-PART of the article."


@pytest.mark.parametrize(
    ("visibility", "reader", "granted"),
    [
        ("public", "anonymous", True), ("public", "member", True), ("public", "staff", True),
        ("members", "anonymous", False), ("members", "member", True), ("members", "staff", True),
        ("paid", "anonymous", False), ("paid", "member", False), ("paid", "staff", True),
    ],
)  # fmt: skip
async def test_visibility_by_reader_level(
    client: AsyncClient,
    factory: Factory,
    articles: ArticleFactory,
    visibility: str,
    reader: str,
    granted: bool,
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, body=BODY, visibility=visibility)
    headers = {}
    if reader == "member":
        headers = (await factory.member()).headers
    elif reader == "staff":
        headers = editor.headers
    response = await client.get(f"/api/v1/articles/{article.slug}", headers=headers)
    assert response.status_code == 200
    data = response.json()
    # Answers are built as dicts for speed; they must stay exactly what the schema documents.
    assert set(data) == set(ArticlePublic.model_fields)
    ArticlePublic.model_validate(data)
    assert data["access"]["granted"] is granted
    assert "Free opening paragraph." in data["excerpt_html"]
    if granted:
        assert "GATED-PART" in data["content_html"]
        assert data["paywall"] is None
    else:
        assert data["content_html"] is None
        assert "GATED-PART" not in response.text
        assert data["paywall"]["required"] == visibility
        assert data["paywall"]["reader"] == ("anonymous" if reader == "anonymous" else "member")


@pytest.mark.parametrize("status", ["draft", "scheduled", "archived"])
async def test_unpublished_articles_are_404_for_the_public_and_visible_to_staff(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, status: str
) -> None:
    editor = await factory.member(role=Role.editor)
    future = utcnow() + timedelta(days=1) if status == "scheduled" else None
    article = await articles.make(editor, status=status, published_at=future)
    member = await factory.member()
    for headers in ({}, member.headers):
        response = await client.get(f"/api/v1/articles/{article.slug}", headers=headers)
        assert response.status_code == 404
        assert response.json()["code"] == "article_not_found"
    listing = await client.get("/api/v1/articles")
    assert listing.json()["items"] == []
    staff = await client.get(f"/api/v1/admin/articles/{article.id}", headers=editor.headers)
    assert staff.status_code == 200
    assert staff.json()["status"] == status


async def test_scheduled_article_goes_live_on_time_without_a_worker(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(
        editor, status="scheduled", published_at=utcnow() - timedelta(seconds=1)
    )
    response = await client.get(f"/api/v1/articles/{article.slug}")
    assert response.status_code == 200


async def test_old_slug_redirects_with_301(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, title="First title")
    old = article.slug
    changed = await client.patch(
        f"/api/v1/admin/articles/{article.id}",
        headers=editor.headers,
        json={"slug": "a-better-slug", "version": article.version},
    )
    assert changed.status_code == 200
    response = await client.get(f"/api/v1/articles/{old}")
    assert response.status_code == 301
    assert response.headers["location"] == "/api/v1/articles/a-better-slug"


async def test_anonymous_responses_are_public_with_etag_and_304(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor)
    first = await client.get(f"/api/v1/articles/{article.slug}")
    assert first.headers["cache-control"] == "public, max-age=60"
    assert "Authorization" in first.headers["vary"]
    etag = first.headers["etag"]
    again = await client.get(f"/api/v1/articles/{article.slug}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""


async def test_signed_in_responses_are_private_and_never_validate_anonymous(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, body=BODY, visibility="paid")
    full = await client.get(f"/api/v1/articles/{article.slug}", headers=editor.headers)
    assert full.headers["cache-control"] == "private, no-store"
    assert "etag" not in full.headers
    # Even a guessed ETag of the full text cannot turn an anonymous request into a 304.
    anon = await client.get(
        f"/api/v1/articles/{article.slug}", headers={"If-None-Match": etag_of(full.content)}
    )
    assert anon.status_code == 200
    assert "GATED-PART" not in anon.text


async def test_head_behaves_like_get_without_a_body(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor)
    get = await client.get(f"/api/v1/articles/{article.slug}")
    head = await client.head(f"/api/v1/articles/{article.slug}")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["etag"] == get.headers["etag"]
    assert (await client.head("/api/v1/articles/nope")).status_code == 404


async def test_article_carries_seo_and_structured_data(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor, name="Jo Writer")
    article = await articles.make(editor, body=BODY, visibility="paid", tags=["Politics"])
    data = (await client.get(f"/api/v1/articles/{article.slug}")).json()
    ld = data["structured_data"]
    assert ld["@type"] == "NewsArticle"
    assert ld["isAccessibleForFree"] is False
    assert ld["hasPart"]["isAccessibleForFree"] is False
    assert ld["author"] == [{"@type": "Person", "name": "Jo Writer"}]
    assert data["seo"]["description"].startswith("Free opening paragraph")
    assert data["tags"] == [{"slug": "politics", "name": "Politics"}]
    assert data["reading_minutes"] >= 1 and data["word_count"] > 0


async def test_excerpt_without_marker_is_the_first_paragraphs(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    body = "\n\n".join(f"Paragraph {i} text." for i in range(1, 8))
    article = await articles.make(editor, body=body, visibility="paid", preview_paragraphs=2)
    data = (await client.get(f"/api/v1/articles/{article.slug}")).json()
    assert "Paragraph 2" in data["excerpt_html"]
    assert "Paragraph 3" not in data["excerpt_html"] and "Paragraph 3" not in str(data)


async def test_cached_answers_are_per_access_level_and_dropped_on_staff_edits(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, body=BODY, visibility="paid", title="Old title")
    full = await client.get(f"/api/v1/articles/{article.slug}", headers=editor.headers)
    assert "GATED-PART" in full.text
    # The full text is now cached for the paid level; an anonymous reader must not get it.
    anonymous = await client.get(f"/api/v1/articles/{article.slug}")
    assert "GATED-PART" not in anonymous.text
    member = await factory.member()
    assert (
        "GATED-PART"
        not in (await client.get(f"/api/v1/articles/{article.slug}", headers=member.headers)).text
    )
    edited = await client.patch(
        f"/api/v1/admin/articles/{article.id}",
        headers=editor.headers,
        json={"title": "New title", "version": article.version},
    )
    assert edited.status_code == 200
    fresh = (await client.get(f"/api/v1/articles/{article.slug}")).json()
    assert fresh["title"] == "New title"


async def test_archive_and_search_items_match_the_teaser_schema(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, body=BODY, title="Harbour tides", visibility="paid")
    listed = (await client.get("/api/v1/articles")).json()["items"]
    found = (await client.get("/api/v1/search?q=harbour")).json()["items"]
    assert listed and found
    for item in [*listed, *(hit["article"] for hit in found)]:
        assert set(item) == set(ArticleTeaser.model_fields)
        ArticleTeaser.model_validate(item)
