"""Comments: who may post, object-level rules, moderation, threads, paging, safety."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.access.entitlements import AccessLevel
from app.accounts.models import Role, User
from app.articles.models import Article
from app.comments.policy import refusal
from tests.articles.test_xss import VECTORS, assert_inert
from tests.factories import ArticleFactory, Factory, Member
from tests.smtp import SmtpSink

A, M, P = AccessLevel.anonymous, AccessLevel.member, AccessLevel.paid


@pytest.mark.parametrize(
    ("setting", "level", "verified", "code"),
    [
        ("everyone", A, False, "authentication_required"),
        ("everyone", M, False, None),
        ("everyone", P, True, None),
        ("members", M, False, "comments_members_only"),
        ("members", M, True, None),
        ("paid", M, True, "comments_paid_only"),
        ("paid", P, True, None),
        ("off", P, True, "comments_closed"),
        ("off", M, True, "comments_closed"),
        ("bogus", P, True, "comments_closed"),
    ],
)
def test_policy_table(setting: str, level: AccessLevel, verified: bool, code: str | None) -> None:
    result = refusal(setting, level, verified=verified)
    assert (result.code if result else None) == code


async def _article(
    articles: ArticleFactory, factory: Factory, **fields: Any
) -> tuple[Article, Member]:
    editor = await factory.member(role=Role.editor)
    return await articles.make(editor, **fields), editor


async def _post(
    client: AsyncClient, slug: str, who: Member | None, body: str = "Nice piece.", **extra: Any
) -> Any:
    headers = who.headers if who else {}
    return await client.post(
        f"/api/v1/articles/{slug}/comments", json={"body": body, **extra}, headers=headers
    )


@pytest.mark.parametrize(
    ("setting", "reader", "expected"),
    [
        ("everyone", "anonymous", 401), ("everyone", "member", 201),
        ("everyone", "unverified", 201),
        ("members", "unverified", 403), ("members", "member", 201),
        ("paid", "member", 403), ("paid", "staff", 201), ("off", "staff", 403),
    ],
)  # fmt: skip
async def test_policy_over_http(
    client: AsyncClient,
    factory: Factory,
    articles: ArticleFactory,
    app: FastAPI,
    setting: str,
    reader: str,
    expected: int,
) -> None:
    article, editor = await _article(articles, factory, comments=setting)
    who: Member | None = None
    if reader == "staff":
        who = editor
    elif reader != "anonymous":
        who = await factory.member()
        if reader == "unverified":
            async with app.state.db.session() as session:
                user = await session.get(User, who.id)
                assert user is not None
                user.email_verified = False
                session.add(user)
    response = await _post(client, article.slug, who)
    assert response.status_code == expected, response.text


async def test_object_level_rules(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, editor = await _article(articles, factory)
    alice, bob = await factory.member(), await factory.member()
    mine = (await _post(client, article.slug, alice)).json()
    path = f"/api/v1/comments/{mine['id']}"
    assert (
        await client.patch(path, json={"body": "hacked"}, headers=bob.headers)
    ).status_code == 403
    assert (await client.delete(path, headers=bob.headers)).status_code == 403
    assert (
        await client.post(f"/api/v1/admin/comments/{mine['id']}/unhide", headers=bob.headers)
    ).status_code == 403
    spoof = await _post(client, article.slug, bob, author_id=alice.id)
    assert spoof.status_code == 422
    assert (await client.post(f"{path}/like", headers=bob.headers)).json() == {"likes": 1}
    assert (await client.post(f"{path}/like", headers=bob.headers)).json() == {"likes": 1}
    assert (await client.delete(f"{path}/like", headers=bob.headers)).json() == {"likes": 0}
    assert (
        await client.patch(path, json={"body": "Edited."}, headers=alice.headers)
    ).status_code == 200
    assert (await client.delete(path, headers=alice.headers)).status_code == 204
    draft = await articles.make(editor, status="draft")
    assert (await _post(client, draft.slug, alice)).status_code == 404
    assert (await _post(client, "no-such-article", alice)).status_code == 404
    assert (
        await client.post("/api/v1/comments/999999/like", headers=bob.headers)
    ).status_code == 404


async def test_hidden_and_deleted_vanish_and_staff_still_see_them(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, editor = await _article(articles, factory)
    reader = await factory.member()
    keep = (await _post(client, article.slug, reader, "Keep me")).json()
    hide = (await _post(client, article.slug, reader, "Hide me")).json()
    gone = (await _post(client, article.slug, reader, "Delete me")).json()
    await client.post(f"/api/v1/admin/comments/{hide['id']}/hide", headers=editor.headers)
    await client.delete(f"/api/v1/comments/{gone['id']}", headers=reader.headers)
    public = (await client.get(f"/api/v1/articles/{article.slug}/comments")).json()
    assert [c["id"] for c in public["items"]] == [keep["id"]]
    assert "Hide me" not in str(public) and "Delete me" not in str(public)
    staff = (
        await client.get(f"/api/v1/admin/comments?article={article.id}", headers=editor.headers)
    ).json()
    assert {c["status"] for c in staff["items"]} == {"visible", "hidden", "deleted"}
    count = (await client.get(f"/api/v1/articles/{article.slug}")).json()["comment_count"]
    assert count == 1


async def test_deleted_comment_with_replies_stays_as_placeholder(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, _ = await _article(articles, factory)
    alice, bob = await factory.member(), await factory.member()
    root = (await _post(client, article.slug, alice, "Root")).json()
    reply = (await _post(client, article.slug, bob, "Reply", parent_id=root["id"])).json()
    await client.delete(f"/api/v1/comments/{root['id']}", headers=alice.headers)
    items = (await client.get(f"/api/v1/articles/{article.slug}/comments")).json()["items"]
    assert len(items) == 1
    assert (
        items[0]["deleted"] is True and items[0]["body_html"] == "" and items[0]["author"] is None
    )
    assert items[0]["replies"][0]["id"] == reply["id"]


async def test_replies_beyond_max_depth_attach_to_the_deepest_allowed(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, _ = await _article(articles, factory)
    reader = await factory.member()
    parent = None
    depths = []
    for i in range(5):  # the fifth would be depth 4; the rate limit allows five a minute
        extra: dict[str, int] = {"parent_id": parent} if parent else {}
        made = (await _post(client, article.slug, reader, f"Level {i}", **extra)).json()
        parent = made["id"]
        depths.append(made)
    tree = (await client.get(f"/api/v1/articles/{article.slug}/comments")).json()["items"]
    level, depth = tree[0], 0
    while level["replies"]:
        depth += 1
        level = level["replies"][0]
    assert depth == 3  # the configured maximum


@pytest.mark.parametrize("vector", VECTORS[:10])
async def test_xss_in_comment_bodies_is_inert(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, vector: str
) -> None:
    article, _ = await _article(articles, factory)
    reader = await factory.member()
    made = await _post(client, article.slug, reader, vector)
    assert made.status_code == 201
    assert_inert(made.json()["body_html"])
    for a in ('rel="nofollow ugc noopener"',):
        html = (await _post(client, article.slug, reader, "[x](https://a.example)")).json()[
            "body_html"
        ]
        assert a in html


async def test_huge_bodies_are_422(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, _ = await _article(articles, factory)
    reader = await factory.member()
    assert (await _post(client, article.slug, reader, "x" * 100_000)).status_code == 422
    assert (await _post(client, article.slug, reader, "   ")).status_code == 422


async def test_paging_returns_each_comment_once_while_new_ones_arrive(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, app: FastAPI
) -> None:
    article, _ = await _article(articles, factory)
    from app.comments.models import Comment

    async with app.state.db.session() as session:
        session.add_all(
            [
                Comment(article_id=article.id or 0, body=f"c{i}", body_html=f"<p>c{i}</p>")
                for i in range(23)
            ]
        )
    reader = await factory.member()
    for order in ("newest", "oldest", "top"):
        seen: list[int] = []
        cursor = None
        while True:
            url = f"/api/v1/articles/{article.slug}/comments?order={order}&limit=5" + (
                f"&cursor={cursor}" if cursor else ""
            )
            page = (await client.get(url)).json()
            seen += [c["id"] for c in page["items"]]
            async with app.state.db.session() as session:
                session.add(
                    Comment(
                        article_id=article.id or 0,
                        author_id=reader.id,
                        body="new",
                        body_html="<p>new</p>",
                    )
                )
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert len(seen) == len(set(seen)), order
        assert len(seen) >= 23


async def test_comment_rate_limit_is_429(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, _ = await _article(articles, factory)
    reader = await factory.member()
    statuses = [(await _post(client, article.slug, reader, f"n{i}")).status_code for i in range(6)]
    assert statuses == [201] * 5 + [429]


async def test_ban_blocks_commenting_until_lifted(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, editor = await _article(articles, factory)
    reader = await factory.member()
    banned = await client.post(
        f"/api/v1/admin/comments/bans/{reader.id}",
        json={"reason": "spam"},
        headers=editor.headers,
    )
    assert banned.status_code == 201
    refused = await _post(client, article.slug, reader)
    assert refused.status_code == 403 and refused.json()["code"] == "comment_banned"
    assert (
        await client.delete(f"/api/v1/admin/comments/bans/{reader.id}", headers=editor.headers)
    ).status_code == 204
    assert (await _post(client, article.slug, reader)).status_code == 201


async def test_reported_filter_and_reply_emails_with_unsubscribe(
    client: AsyncClient,
    factory: Factory,
    articles: ArticleFactory,
    smtp_sink: SmtpSink,
    app: FastAPI,
) -> None:
    article, editor = await _article(articles, factory)
    alice = await factory.member(email="alice@example.com")
    bob = await factory.member(email="bob@example.com")
    root = (await _post(client, article.slug, alice, "First")).json()
    await client.post(
        f"/api/v1/comments/{root['id']}/report", json={"reason": "rude"}, headers=bob.headers
    )
    await client.post(
        f"/api/v1/comments/{root['id']}/report", json={"reason": "rude"}, headers=bob.headers
    )
    reported = (
        await client.get("/api/v1/admin/comments?reported=true", headers=editor.headers)
    ).json()
    assert [(c["id"], c["reports"]) for c in reported["items"]] == [(root["id"], 1)]
    await _post(client, article.slug, bob, "Quiet reply", parent_id=root["id"])
    assert not smtp_sink.handler.to("alice@example.com")
    await client.put("/api/v1/me/comment-reply-emails?on=true", headers=alice.headers)
    await _post(client, article.slug, bob, "Loud reply", parent_id=root["id"])
    [mail] = smtp_sink.handler.to("alice@example.com")
    link = str(mail["List-Unsubscribe"]).strip("<>")
    path = link.split("api.test", 1)[-1].replace("http://127.0.0.1:8000", "")
    stop = await client.post(path)
    assert stop.status_code == 200
    assert (
        await client.post("/api/v1/comments/reply-emails/unsubscribe?token=1.bad")
    ).status_code == 422
    await _post(client, article.slug, bob, "Third reply", parent_id=root["id"])
    assert len(smtp_sink.handler.to("alice@example.com")) == 1


async def test_deleting_an_account_anonymises_its_comments(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    article, _ = await _article(articles, factory)
    reader = await factory.member(name="Leaving Person")
    await _post(client, article.slug, reader, "My words")
    export = (await client.get("/api/v1/me/export", headers=reader.headers)).json()
    assert [c["body"] for c in export["comments"]] == ["My words"]
    await client.request(
        "DELETE", "/api/v1/me", headers=reader.headers, json={"password": reader.password}
    )
    items = (await client.get(f"/api/v1/articles/{article.slug}/comments")).json()["items"]
    assert items[0]["author"] == {"id": None, "name": "[deleted account]"}
    assert "Leaving Person" not in str(items)
