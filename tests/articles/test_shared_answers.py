"""Answers that are the same for every reader come from the response cache (review L11): the
feed, the sitemap, tags, authors and months cost a full read each, so they are built once
and dropped by the next staff write, like article pages."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import update

from app.accounts.models import Role, User
from app.articles.models import Article, Tag
from app.core.db import utcnow
from tests.factories import ArticleFactory, Factory

SHARED = ["/api/v1/tags", "/api/v1/authors", "/api/v1/archive", "/feed.xml", "/sitemap.xml"]


async def _change_behind_the_apps_back(app: FastAPI, article: Article, editor_id: int) -> None:
    async with app.state.db.session() as session:
        await session.exec(
            update(Article)
            .where(Article.id == article.id)  # type: ignore[arg-type]
            .values(title="Renamed", slug="renamed", published_at=utcnow() - timedelta(days=400))
        )
        await session.exec(update(Tag).values(name="Renamed tag"))
        await session.exec(
            update(User).where(User.id == editor_id).values(display_name="Renamed author")  # type: ignore[arg-type]
        )


@pytest.mark.parametrize("path", SHARED)
async def test_shared_answers_are_cached_until_a_staff_write(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory, path: str
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, title="First story", tags=["harbour"])
    first = await client.get(path)
    assert first.status_code == 200
    await _change_behind_the_apps_back(app, article, editor.id)
    assert (await client.get(path)).content == first.content
    # Any staff write drops every cached answer.
    touched = await client.post(
        "/api/v1/admin/articles", headers=editor.headers, json={"title": "Draft", "body_md": "x"}
    )
    assert touched.status_code == 201
    assert (await client.get(path)).content != first.content


async def test_archive_pages_are_cached_under_one_spelling_of_their_query(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, title="First story")
    first = await client.get("/api/v1/articles?limit=100")
    await _change_behind_the_apps_back(app, article, editor.id)
    # Another spelling of the same page is the same cached entry, not a new render.
    for spelling in ("limit=0100", "limit=+100", "limit=500"):
        again = await client.get(f"/api/v1/articles?{spelling}")
        assert again.content == first.content, spelling
