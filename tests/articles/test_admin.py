"""Staff article management: roles, optimistic concurrency, revisions, scheduling."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from app.articles.jobs import publish_scheduled
from app.articles.markdown import Rendered, Renderer
from app.articles.models import Article
from app.core.db import utcnow
from tests.factories import Factory

NEW = {
    "title": "Budget day",
    "body_md": "Intro.\n\n<!-- paywall -->\n\nDetails.",
    "tags": ["Economy"],
}


async def test_editor_creates_edits_publishes_and_deletes(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    created = await client.post("/api/v1/admin/articles", headers=editor.headers, json=NEW)
    assert created.status_code == 201, created.text
    article = created.json()
    assert article["status"] == "draft" and article["slug"] == "budget-day"
    assert created.headers["etag"] == '"v1"'
    assert article["has_paywall_marker"] is True
    path = f"/api/v1/admin/articles/{article['id']}"
    edited = await client.patch(
        path, headers={**editor.headers, "If-Match": '"v1"'}, json={"subtitle": "What changed"}
    )
    assert edited.status_code == 200 and edited.json()["version"] == 2
    published = await client.post(f"{path}/publish", headers=editor.headers)
    assert published.json()["status"] == "published"
    assert (await client.get("/api/v1/articles/budget-day")).status_code == 200
    assert (await client.delete(path, headers=editor.headers)).status_code == 204
    assert (await client.get(path, headers=editor.headers)).status_code == 404
    assert (await client.get("/api/v1/articles/budget-day")).status_code == 404


async def test_stale_write_is_409_and_missing_version_is_428(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = (await client.post("/api/v1/admin/articles", headers=editor.headers, json=NEW)).json()
    path = f"/api/v1/admin/articles/{article['id']}"
    assert (
        await client.patch(path, headers=editor.headers, json={"title": "A"})
    ).status_code == 428
    ok = await client.patch(path, headers=editor.headers, json={"title": "A", "version": 1})
    assert ok.status_code == 200
    stale = await client.patch(path, headers=editor.headers, json={"title": "B", "version": 1})
    assert stale.status_code == 409
    assert stale.json()["code"] == "version_conflict"
    assert stale.json()["current_version"] == 2
    current = await client.get(path, headers=editor.headers)
    assert current.json()["title"] == "A"


async def test_author_edits_own_drafts_only_and_cannot_publish(
    client: AsyncClient, factory: Factory
) -> None:
    author = await factory.member(role=Role.author)
    other = await factory.member(role=Role.author)
    editor = await factory.member(role=Role.editor)
    draft = (await client.post("/api/v1/admin/articles", headers=author.headers, json=NEW)).json()
    path = f"/api/v1/admin/articles/{draft['id']}"
    own = await client.patch(path, headers=author.headers, json={"title": "Mine", "version": 1})
    assert own.status_code == 200
    assert (await client.get(path, headers=other.headers)).status_code == 404
    assert (
        await client.patch(path, headers=other.headers, json={"title": "X", "version": 2})
    ).status_code == 404
    publish = await client.post(f"{path}/publish", headers=author.headers)
    assert publish.status_code == 403
    assert publish.json()["code"] == "article_forbidden"
    assert (await client.post(f"{path}/publish", headers=editor.headers)).status_code == 200
    # Once published, the author can no longer change it alone.
    late = await client.patch(path, headers=author.headers, json={"title": "Y", "version": 2})
    assert late.status_code == 403
    listing = (await client.get("/api/v1/admin/articles", headers=other.headers)).json()
    assert listing["items"] == []


async def test_readers_cannot_reach_staff_endpoints(client: AsyncClient, factory: Factory) -> None:
    reader = await factory.member()
    assert (await client.get("/api/v1/admin/articles", headers=reader.headers)).status_code == 403
    assert (
        await client.post("/api/v1/admin/articles", headers=reader.headers, json=NEW)
    ).status_code == 403
    assert (await client.get("/api/v1/admin/articles")).status_code == 401


async def test_revisions_are_kept_and_can_be_restored(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = (await client.post("/api/v1/admin/articles", headers=editor.headers, json=NEW)).json()
    path = f"/api/v1/admin/articles/{article['id']}"
    await client.patch(path, headers=editor.headers, json={"body_md": "Second body", "version": 1})
    revisions = (await client.get(f"{path}/revisions", headers=editor.headers)).json()
    assert [r["version"] for r in revisions] == [2, 1]
    assert revisions[0]["editor_id"] == editor.id
    first = revisions[-1]
    restored = await client.post(f"{path}/revisions/{first['id']}/restore", headers=editor.headers)
    assert restored.status_code == 200
    assert restored.json()["body_md"] == NEW["body_md"]
    assert restored.json()["version"] == 3
    assert len((await client.get(f"{path}/revisions", headers=editor.headers)).json()) == 3


async def test_schedule_then_worker_publishes_on_time(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = (await client.post("/api/v1/admin/articles", headers=editor.headers, json=NEW)).json()
    path = f"/api/v1/admin/articles/{article['id']}"
    past = await client.post(
        f"{path}/schedule",
        headers=editor.headers,
        json={"published_at": (utcnow() - timedelta(minutes=1)).isoformat()},
    )
    assert past.status_code == 422
    soon = utcnow() + timedelta(hours=1)
    scheduled = await client.post(
        f"{path}/schedule", headers=editor.headers, json={"published_at": soon.isoformat()}
    )
    assert scheduled.json()["status"] == "scheduled"
    assert (await publish_scheduled(app.state.db, app.state.settings)) == 0
    # Move the schedule into the past, as if the worker had been down at that moment.
    async with app.state.db.session() as session:
        row = await session.get(Article, article["id"])
        assert row is not None
        row.published_at = utcnow() - timedelta(minutes=5)
        session.add(row)
    assert (await client.get("/api/v1/articles/budget-day")).status_code == 200
    assert (await publish_scheduled(app.state.db, app.state.settings)) == 1
    assert (await client.get(path, headers=editor.headers)).json()["status"] == "published"


@pytest.mark.parametrize(
    "body",
    [{"title": ""}, {"title": "x" * 301}, {"title": "ok", "visibility": "secret"},
     {"title": "ok", "slug": "Bad Slug"}, {"title": "ok", "author_ids": [999999]},
     {"title": "ok", "unknown": 1}, {"title": "ok", "cover_image_url": "javascript:alert(1)"}],
)  # fmt: skip
async def test_bad_article_input_is_4xx_and_writes_nothing(
    client: AsyncClient, factory: Factory, body: dict[str, object]
) -> None:
    editor = await factory.member(role=Role.editor)
    response = await client.post("/api/v1/admin/articles", headers=editor.headers, json=body)
    assert response.status_code == 422, response.text
    listing = (await client.get("/api/v1/admin/articles", headers=editor.headers)).json()
    assert listing["items"] == []


async def test_duplicate_titles_get_unique_slugs(client: AsyncClient, factory: Factory) -> None:
    editor = await factory.member(role=Role.editor)
    slugs = [
        (await client.post("/api/v1/admin/articles", headers=editor.headers, json=NEW)).json()[
            "slug"
        ]
        for _ in range(3)
    ]
    assert slugs == ["budget-day", "budget-day-2", "budget-day-3"]


class _GatedRenderer(Renderer):
    """The real renderer, held mid-render until the event loop lets it go."""

    def __init__(self, base: Renderer) -> None:
        super().__init__("https://reader.example", base.rule)
        self.started = threading.Event()
        self.release = threading.Event()
        self.released_in_time = False

    def render(self, body_md: str, **options: Any) -> Rendered:
        self.started.set()
        # On the loop's own thread this wait could never be ended by the loop: it times out.
        self.released_in_time = self.release.wait(timeout=5)
        return super().render(body_md, **options)


async def test_article_bodies_render_off_the_event_loop(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    author = await factory.member(role=Role.author)
    gated = _GatedRenderer(app.state.renderer)
    app.state.renderer = gated
    body = {"title": "Slow to render", "body_md": "[" * 20_000 + "\n\n" + "\n" * 40_000}
    request = asyncio.create_task(
        client.post("/api/v1/admin/articles", headers=author.headers, json=body)
    )
    while not gated.started.is_set():
        await asyncio.sleep(0.001)
    gated.release.set()
    response = await request
    assert response.status_code == 201, response.text
    assert gated.released_in_time


async def test_the_create_answer_and_the_search_index_include_the_new_tags_and_authors(
    client: AsyncClient, factory: Factory
) -> None:
    """Product review B3: the links added in the same request were missing from both."""
    editor = await factory.member(role=Role.editor, name="Jo Desk")
    created = await client.post(
        "/api/v1/admin/articles",
        headers=editor.headers,
        json={"title": "Tagged", "body_md": "Body.", "tags": ["Zeta New", "harbour"]},
    )
    assert created.status_code == 201
    assert {t["name"] for t in created.json()["tags"]} == {"harbour", "Zeta New"}
    assert created.json()["authors"] == [{"id": editor.id, "name": "Jo Desk"}]
    await client.post(
        f"/api/v1/admin/articles/{created.json()['id']}/publish", headers=editor.headers
    )
    found = await client.get("/api/v1/search?q=zeta")
    assert [hit["article"]["slug"] for hit in found.json()["items"]] == ["tagged"]
