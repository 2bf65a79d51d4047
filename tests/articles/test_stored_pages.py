"""Article pages and archive cards rendered at write time stay equal to a fresh render of the
article as it stands, after every kind of change; gated text is joined in only for readers with
access."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import Connection, text

from app.accounts.models import Role
from app.articles import derived, page_parts, presenter
from app.articles.models import Article
from app.articles.repository import pages
from app.articles.schemas import Publication
from app.core.db import Database, pk
from app.core.jsonutil import dumps
from tests.articles.test_leak import PAID_SENTINEL, body
from tests.factories import ArticleFactory, Factory, Member

BODY = "Free opening paragraph.\n\n<!-- paywall -->\n\nGATED-PART of the article."
# The page's members that are the reader's (and the full text, checked on its own).
READER = {"access", "paywall", "comment_count", "content_html", "structured_data"}


Fresh = tuple[dict[str, Any], str, dict[str, Any], dict[str, Any]]


async def _fresh(db: Database, article_id: int, public_url: str) -> Fresh:
    """The page's shared members, its full text and its archive card, as a render of the rows
    now would make them."""

    def render(conn: Connection) -> Fresh:
        [source] = pages.sources(conn, after=0, limit=1, ids=[article_id])
        authors = pages.bylines(conn, [article_id]).get(article_id, [])
        tags = pages.tag_lists(conn, [article_id]).get(article_id, [])
        tiers = [slug for _, slug in pages.tier_lists(conn, [article_id]).get(article_id, [])]
        head, structured = presenter.page_head(source, authors, tags, tiers, public_url)
        card = presenter.teaser(source, authors, tags, tiers)
        free = source.visibility == "public"
        ld = orjson.loads(presenter.structured_data(structured, free))
        return orjson.loads(dumps(head)), source.content_html, orjson.loads(dumps(card)), ld

    async with db.session(write=False) as session:
        conn = await session.connection()
        return await conn.run_sync(render)


async def _same_as_fresh(
    app: FastAPI, client: AsyncClient, article: Article, reader: Member | None = None
) -> dict[str, Any]:
    answer = await client.get(
        f"/api/v1/articles/{article.slug}", headers=reader.headers if reader else {}
    )
    assert answer.status_code == 200
    page: dict[str, Any] = answer.json()
    fresh = await _fresh(app.state.db, pk(article.id), app.state.settings.public_url)
    head, content, card, ld = fresh
    assert {k: v for k, v in page.items() if k not in READER} == head
    assert page["structured_data"] == ld
    assert page["content_html"] == (content if page["access"]["granted"] else None)
    archive = (await client.get("/api/v1/articles?limit=100")).json()["items"]
    assert [item for item in archive if item["slug"] == article.slug] == [card]
    return page


async def _article(app: FastAPI, article_id: int) -> Article:
    async with app.state.db.session(write=False) as session:
        found: Article | None = await session.get(Article, article_id)
    assert found is not None
    return found


async def test_the_stored_page_follows_edits_status_and_visibility(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor, name="Ed Itor")
    article = await articles.make(editor, body=BODY, visibility="public", tags=["Town Hall"])
    page = await _same_as_fresh(app, client, article)
    assert "GATED-PART" in page["content_html"]
    changes: list[dict[str, Any]] = [
        {"title": "A new title", "body_md": BODY.replace("GATED-PART", "GATED-PART again")},
        {"visibility": "paid"},
        {"tags": ["Harbour", "Town Hall"], "seo_description": "Searchable"},
        {"slug": "a-new-slug", "cover_image_url": "https://img.example/c.jpg"},
    ]
    for change in changes:
        current = await _article(app, pk(article.id))
        edited = await client.patch(
            f"/api/v1/admin/articles/{article.id}",
            json={**change, "version": current.version},
            headers=editor.headers,
        )
        assert edited.status_code == 200, edited.text
        article = await _article(app, pk(article.id))
        await _same_as_fresh(app, client, article)
        page = await _same_as_fresh(app, client, article, editor)
    assert page["title"] == "A new title" and page["cover"]["url"] == "https://img.example/c.jpg"
    anonymous = await _same_as_fresh(app, client, article)
    assert anonymous["content_html"] is None and "GATED-PART" not in str(anonymous)
    assert "GATED-PART again" in page["content_html"]
    # Publishing again moves the publication time the page prints.
    for action in ("unpublish", "publish"):
        done = await client.post(
            f"/api/v1/admin/articles/{article.id}/{action}", headers=editor.headers
        )
        assert done.status_code == 200
    await _same_as_fresh(app, client, await _article(app, pk(article.id)), editor)


async def test_the_stored_page_follows_a_tag_rename(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, body=BODY, tags=["Town Hall", "Harbour"])
    other = await articles.make(editor, body=BODY, tags=["Harbour"])
    tags = (await client.get("/api/v1/admin/tags", headers=editor.headers)).json()
    [town_hall] = [tag for tag in tags if tag["name"] == "Town Hall"]
    renamed = await client.patch(
        f"/api/v1/admin/tags/{town_hall['id']}",
        json={"name": "Civic Centre", "slug": "civic-centre"},
        headers=editor.headers,
    )
    assert renamed.status_code == 200, renamed.text
    page = await _same_as_fresh(app, client, article)
    assert {"slug": "civic-centre", "name": "Civic Centre"} in page["tags"]
    assert "Town Hall" not in str(page)
    await _same_as_fresh(app, client, other)


async def test_the_stored_page_follows_its_author_and_its_comments(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    author = await factory.member(role=Role.editor, name="First Name")
    article = await articles.make(author, body=BODY)
    renamed = await client.patch(
        "/api/v1/me", json={"display_name": "Second Name"}, headers=author.headers
    )
    assert renamed.status_code == 200, renamed.text
    page = await _same_as_fresh(app, client, article)
    assert [a["name"] for a in page["authors"]] == ["Second Name"]
    assert page["structured_data"]["author"] == [{"@type": "Person", "name": "Second Name"}]
    reader = await factory.member()
    posted = await client.post(
        f"/api/v1/articles/{article.slug}/comments", json={"body": "Hi"}, headers=reader.headers
    )
    assert posted.status_code == 201, posted.text
    assert (await _same_as_fresh(app, client, article))["comment_count"] == 1
    editor = await factory.member(role=Role.editor)
    hidden = await client.post(
        f"/api/v1/admin/comments/{posted.json()['id']}/hide", headers=editor.headers
    )
    assert hidden.status_code == 204
    assert (await _same_as_fresh(app, client, article))["comment_count"] == 0
    gone = await client.request(
        "DELETE", "/api/v1/me", json={"password": author.password}, headers=author.headers
    )
    assert gone.status_code == 204, gone.text
    page = await _same_as_fresh(app, client, article)
    assert "First Name" not in str(page) and "Second Name" not in str(page)


async def test_pages_of_another_format_or_url_are_rendered_again(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    made = [await articles.make(editor, title=f"Stored {n}") for n in range(3)]
    db: Database = app.state.db
    async with db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            text("UPDATE article_page SET head = :junk, format = 0 WHERE article_id = :id"),
            params={"junk": b'"junk":1', "id": made[0].id},
        )
    moved = "https://moved.example"
    await derived.refresh_stale(db, Publication(moved))
    async with db.session(write=False) as session:
        rows = (
            await session.exec(  # type: ignore[call-overload]
                text("SELECT article_id, format, public_url FROM article_page")
            )
        ).all()
    assert {(pk(a.id), page_parts.PAGE_FORMAT, moved) for a in made} <= set(rows)
    app.state.response_cache.clear()
    for article in made:
        page = (await client.get(f"/api/v1/articles/{article.slug}")).json()
        assert page["structured_data"]["url"] == f"{moved}/{article.slug}"
        assert "junk" not in page


async def test_the_shared_part_of_a_stored_page_never_holds_gated_text(
    app: FastAPI, factory: Factory, articles: ArticleFactory
) -> None:
    # The leak test crawls the answers; this holds the stored bytes every reader is served
    # from to the same rule, for each way a body is cut.
    editor = await factory.member(role=Role.editor)
    made = {
        kind: await articles.make(editor, body=body(PAID_SENTINEL, kind), visibility="paid")
        for kind in ("marker", "short", "blocks")
    }
    async with app.state.db.session(write=False) as session:
        rows = (
            await session.exec(text("SELECT article_id, head, content FROM article_page"))
        ).all()
    stored = {article_id: (bytes(head), bytes(content)) for article_id, head, content in rows}
    for article in made.values():
        head, content = stored[pk(article.id)]
        assert PAID_SENTINEL.encode() not in head
        assert PAID_SENTINEL.encode() in content
