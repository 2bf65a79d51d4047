"""/api/v1/admin/tags: the staff list and renames, and what a bad rename gets."""

from __future__ import annotations

from httpx import AsyncClient

from app.accounts.models import Role
from tests.factories import ArticleFactory, Factory


async def test_the_list_counts_every_article_and_a_rename_shows_everywhere(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, tags=["Harbour", "Tides"])
    await articles.make(editor, tags=["Harbour"], status="draft")
    listed = await client.get("/api/v1/admin/tags", headers=editor.headers)
    assert listed.status_code == 200
    counts = {tag["name"]: tag["articles"] for tag in listed.json()}
    assert counts == {"Harbour": 2, "Tides": 1}
    [harbour] = [tag for tag in listed.json() if tag["name"] == "Harbour"]
    renamed = await client.patch(
        f"/api/v1/admin/tags/{harbour['id']}", json={"slug": "port"}, headers=editor.headers
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json() == {"id": harbour["id"], "slug": "port", "name": "Harbour", "articles": 2}
    public = (await client.get("/api/v1/tags")).json()
    assert {"slug": "port", "name": "Harbour", "articles": 1} in public
    assert (await client.get("/api/v1/articles?tag=port")).json()["items"]


async def test_bad_renames_are_refused_and_change_nothing(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, tags=["Harbour", "Tides"])
    tags = {
        t["name"]: t
        for t in (await client.get("/api/v1/admin/tags", headers=editor.headers)).json()
    }
    url = f"/api/v1/admin/tags/{tags['Tides']['id']}"
    taken = await client.patch(url, json={"slug": "harbour"}, headers=editor.headers)
    assert taken.status_code == 409 and taken.json()["code"] == "slug_taken"
    for body in ({}, {"slug": "Not A Slug"}, {"name": "   "}, {"name": "x" * 101}, {"other": 1}):
        refused = await client.patch(url, json=body, headers=editor.headers)
        assert refused.status_code == 422, (body, refused.text)
        assert refused.headers["content-type"].startswith("application/problem+json")
    missing = await client.patch(
        "/api/v1/admin/tags/999999", json={"name": "New"}, headers=editor.headers
    )
    assert missing.status_code == 404 and missing.json()["code"] == "tag_not_found"
    after = (await client.get("/api/v1/admin/tags", headers=editor.headers)).json()
    assert {t["name"]: t["slug"] for t in after} == {"Harbour": "harbour", "Tides": "tides"}
    author = await factory.member(role=Role.author)
    forbidden = await client.patch(url, json={"name": "Mine"}, headers=author.headers)
    assert forbidden.status_code == 403
