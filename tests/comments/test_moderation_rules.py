"""Comments: what a ban stops, who may moderate whom, hidden comments and nameless authors."""

from __future__ import annotations

from typing import Any

import pytest
from httpx import AsyncClient

from app.accounts.models import Role
from app.comments.policy import may_moderate
from tests.comments.test_comments import _article, _post
from tests.factories import ArticleFactory, Factory, Member

R, AU, E, AD = Role.reader, Role.author, Role.editor, Role.admin


async def _ban(client: AsyncClient, staff: Member, member: Member) -> Any:
    return await client.post(
        f"/api/v1/admin/comments/bans/{member.id}", json={"reason": "spam"}, headers=staff.headers
    )


async def _staff_view(client: AsyncClient, staff: Member, article_id: int) -> dict[int, Any]:
    page = await client.get(f"/api/v1/admin/comments?article={article_id}", headers=staff.headers)
    return {c["id"]: c for c in page.json()["items"]}


@pytest.mark.parametrize("action", ["edit", "like", "unlike", "report"])
async def test_a_banned_member_cannot_edit_like_unlike_or_report(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, action: str
) -> None:
    article, editor = await _article(articles, factory)
    spammer, other = await factory.member(), await factory.member()
    mine = (await _post(client, article.slug, spammer, "Harmless words")).json()
    theirs = (await _post(client, article.slug, other, "A fair point")).json()
    await client.post(f"/api/v1/comments/{theirs['id']}/like", headers=spammer.headers)
    assert (await _ban(client, editor, spammer)).status_code == 201

    calls = {
        "edit": ("PATCH", f"/comments/{mine['id']}", {"body": "[win](https://spam.example)"}),
        "like": ("POST", f"/comments/{theirs['id']}/like", None),
        "unlike": ("DELETE", f"/comments/{theirs['id']}/like", None),
        "report": ("POST", f"/comments/{theirs['id']}/report", {"reason": "I dislike it"}),
    }
    method, path, payload = calls[action]
    refused = await client.request(method, f"/api/v1{path}", json=payload, headers=spammer.headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "comment_banned"

    seen = await _staff_view(client, editor, article.id or 0)
    assert seen[mine["id"]]["body"] == "Harmless words"
    assert seen[theirs["id"]]["likes"] == 1
    assert seen[theirs["id"]]["reports"] == 0


async def test_a_banned_member_may_still_delete_their_own_comment(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, editor = await _article(articles, factory)
    reader = await factory.member()
    mine = (await _post(client, article.slug, reader, "Words to take back")).json()
    await _ban(client, editor, reader)
    gone = await client.delete(f"/api/v1/comments/{mine['id']}", headers=reader.headers)
    assert gone.status_code == 204
    listed = (await client.get(f"/api/v1/articles/{article.slug}/comments")).json()["items"]
    assert listed == []


async def test_a_lifted_ban_gives_editing_back(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, editor = await _article(articles, factory)
    reader = await factory.member()
    mine = (await _post(client, article.slug, reader, "First go")).json()
    await _ban(client, editor, reader)
    await client.delete(f"/api/v1/admin/comments/bans/{reader.id}", headers=editor.headers)
    edited = await client.patch(
        f"/api/v1/comments/{mine['id']}", json={"body": "Second go"}, headers=reader.headers
    )
    assert edited.status_code == 200, edited.text


async def test_a_nameless_author_shows_as_reader_everywhere(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, _ = await _article(articles, factory)
    quiet = await factory.member(email="quiet.person@example.com")
    named = await factory.member(name="Named Person")
    cleared = await client.patch("/api/v1/me", json={"display_name": ""}, headers=quiet.headers)
    assert cleared.status_code == 200 and cleared.json()["display_name"] == ""

    root = await _post(client, article.slug, named, "Root")
    posted = await _post(client, article.slug, quiet, "A reply", parent_id=root.json()["id"])
    assert posted.json()["author"] == {"id": quiet.id, "name": "Reader"}
    edited = await client.patch(
        f"/api/v1/comments/{posted.json()['id']}", json={"body": "Edited"}, headers=quiet.headers
    )
    assert edited.json()["author"] == {"id": quiet.id, "name": "Reader"}
    top = await _post(client, article.slug, quiet, "Top level")

    listed = await client.get(f"/api/v1/articles/{article.slug}/comments?order=oldest")
    first, second = listed.json()["items"]
    assert first["author"]["name"] == "Named Person"
    assert first["replies"][0]["author"] == {"id": quiet.id, "name": "Reader"}
    assert second["id"] == top.json()["id"]
    assert second["author"] == {"id": quiet.id, "name": "Reader"}
    replies = await client.get(
        f"/api/v1/articles/{article.slug}/comments?parent={root.json()['id']}"
    )
    assert replies.json()["items"][0]["author"]["name"] == "Reader"
    for answer in (posted, edited, listed, replies):
        assert "quiet" not in answer.text


@pytest.mark.parametrize(
    ("actor", "target", "allowed"),
    [
        (E, R, True), (E, AU, True), (E, E, False), (E, AD, False), (E, None, True),
        (AD, R, True), (AD, AU, True), (AD, E, True), (AD, AD, True), (AD, None, True),
    ],
)  # fmt: skip
def test_who_may_moderate_whom(actor: Role, target: Role | None, allowed: bool) -> None:
    assert may_moderate(actor.value, target.value if target else None) is allowed


@pytest.mark.parametrize(
    ("actor", "target", "expected"),
    [(E, AD, 403), (E, E, 403), (E, AU, 201), (E, R, 201), (AD, E, 201), (AD, AD, 201)],
)
async def test_banning_editors_and_admins_takes_an_admin(
    client: AsyncClient, factory: Factory, actor: Role, target: Role, expected: int
) -> None:
    moderator, member = await factory.member(role=actor), await factory.member(role=target)
    answer = await _ban(client, moderator, member)
    assert answer.status_code == expected, answer.text
    if expected == 403:
        assert answer.json()["code"] == "moderation_needs_admin"


async def test_an_editor_cannot_lift_a_ban_an_admin_put_on_an_editor(
    client: AsyncClient, factory: Factory
) -> None:
    admin, editor = await factory.member(role=AD), await factory.member(role=E)
    banned = await factory.member(role=E)
    assert (await _ban(client, admin, banned)).status_code == 201
    path = f"/api/v1/admin/comments/bans/{banned.id}"
    refused = await client.delete(path, headers=editor.headers)
    assert refused.status_code == 403 and refused.json()["code"] == "moderation_needs_admin"
    assert (await client.delete(path, headers=admin.headers)).status_code == 204


@pytest.mark.parametrize(
    ("actor", "author", "expected"),
    [(E, AD, 403), (E, E, 403), (E, AU, 204), (E, R, 204), (AD, E, 204), (AD, AD, 204)],
)
async def test_moderating_editors_and_admins_comments_takes_an_admin(
    client: AsyncClient,
    factory: Factory,
    articles: ArticleFactory,
    actor: Role,
    author: Role,
    expected: int,
) -> None:
    article, _ = await _article(articles, factory)
    moderator, writer = await factory.member(role=actor), await factory.member(role=author)
    made = (await _post(client, article.slug, writer, "Staff words")).json()
    base = f"/api/v1/admin/comments/{made['id']}"
    for method, path in (("POST", f"{base}/hide"), ("POST", f"{base}/unhide"), ("DELETE", base)):
        answer = await client.request(method, path, headers=moderator.headers)
        assert answer.status_code == expected, (path, answer.text)
        if expected == 403:
            assert answer.json()["code"] == "moderation_needs_admin"
    listed = (await client.get(f"/api/v1/articles/{article.slug}/comments")).json()["items"]
    assert bool(listed) is (expected == 403)


async def test_an_author_cannot_erase_or_rewrite_their_hidden_comment(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, editor = await _article(articles, factory)
    reader, other = await factory.member(), await factory.member()
    made = (await _post(client, article.slug, reader, "Something nasty")).json()
    reply = (await _post(client, article.slug, other, "Answer", parent_id=made["id"])).json()
    hidden = await client.post(f"/api/v1/admin/comments/{made['id']}/hide", headers=editor.headers)
    assert hidden.status_code == 204
    path = f"/api/v1/comments/{made['id']}"

    for answer in (
        await client.delete(path, headers=reader.headers),
        await client.patch(path, json={"body": "Something nice"}, headers=reader.headers),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.json()["code"] == "comment_not_found"

    seen = await _staff_view(client, editor, article.id or 0)
    assert seen[made["id"]]["status"] == "hidden"
    assert seen[made["id"]]["body"] == "Something nasty"
    assert seen[reply["id"]]["status"] == "visible"
    public = (await client.get(f"/api/v1/articles/{article.slug}/comments")).json()
    assert public["items"] == [] and "nasty" not in str(public)

    await client.post(f"/api/v1/admin/comments/{made['id']}/unhide", headers=editor.headers)
    assert (await client.delete(path, headers=reader.headers)).status_code == 204
