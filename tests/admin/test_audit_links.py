"""Who credited whom and who tagged what: article author and tag links in the audit log."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from app.accounts.models import Role
from tests.factories import Factory, Member


async def _log(client: AsyncClient, admin: Member, entity: str, article_id: int) -> list[Any]:
    """The entries about one article's links, oldest first."""
    answer = await client.get(
        f"/api/v1/admin/audit?entity={entity}&entity_id={article_id}&limit=100",
        headers=admin.headers,
    )
    assert answer.status_code == 200
    return list(reversed(answer.json()["items"]))


async def _edit(client: AsyncClient, editor: Member, article: dict[str, Any], **body: Any) -> None:
    edited = await client.patch(
        f"/api/v1/admin/articles/{article['id']}",
        json={"version": article["version"], **body},
        headers=editor.headers,
    )
    assert edited.status_code == 200, edited.text
    article["version"] = edited.json()["version"]


async def test_tags_added_and_removed_are_audited_with_their_slug(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    editor = await factory.member(role=Role.editor)
    created = await client.post(
        "/api/v1/admin/articles",
        json={"title": "Tagged", "tags": ["Climate", "Energy"]},
        headers=editor.headers,
    )
    article = created.json()
    await _edit(client, editor, article, tags=["Energy", "Water Rights"])
    # Sending the same tags again writes nothing.
    await _edit(client, editor, article, tags=["Water Rights", "Energy"])
    log = await _log(client, admin, "article_tag", article["id"])
    summary = [
        (e["action"], (e["after"] or e["before"])["tag_slug"], e["actor_id"], e["entity_id"])
        for e in log
    ]
    aid = str(article["id"])
    assert sorted(summary[:2]) == [
        ("create", "climate", editor.id, aid),
        ("create", "energy", editor.id, aid),
    ]
    assert sorted(summary[2:]) == [
        ("create", "water-rights", editor.id, aid),
        ("delete", "climate", editor.id, aid),
    ]
    removed = next(e for e in log if e["action"] == "delete")
    assert removed["before"]["article_id"] == article["id"] and removed["after"] is None


async def test_authors_credited_withdrawn_and_reordered_are_audited(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    editor = await factory.member(role=Role.editor)
    ada = await factory.member(role=Role.author)
    bo = await factory.member(role=Role.author)
    created = await client.post(
        "/api/v1/admin/articles",
        json={"title": "Credited", "author_ids": [ada.id, bo.id]},
        headers=editor.headers,
    )
    article = created.json()
    await _edit(client, editor, article, author_ids=[bo.id, editor.id])
    log = await _log(client, admin, "article_author", article["id"])
    assert sorted((e["after"]["user_id"], e["after"]["position"]) for e in log[:2]) == [
        (ada.id, 0),
        (bo.id, 1),
    ]
    changes = {(e["action"], (e["after"] or e["before"])["user_id"]): e for e in log[2:]}
    assert set(changes) == {("delete", ada.id), ("update", bo.id), ("create", editor.id)}
    moved = changes[("update", bo.id)]
    assert moved["before"] == {"article_id": article["id"], "user_id": bo.id, "position": 1}
    assert moved["after"] == {"article_id": article["id"], "user_id": bo.id, "position": 0}
    assert {e["actor_id"] for e in log} == {editor.id}
    shown = await client.get(f"/api/v1/admin/articles/{article['id']}", headers=editor.headers)
    assert [a["id"] for a in shown.json()["authors"]] == [bo.id, editor.id]
