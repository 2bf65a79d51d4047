"""Cached article and archive pages: answered before routing exactly as the routes answer,
never across levels or past a revoked token; kept true to writes made elsewhere (content
version) and to scheduled articles going live."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient, Response
from sqlalchemy import update
from sqlmodel import col
from starlette.types import Message, Receive, Scope, Send

from app.access.deps import reader_entitlements
from app.accounts.models import Role, User
from app.articles import derived, search_answers
from app.articles.live import NEXT_CHANGE_SQL
from app.articles.models import Article
from app.billing.models import CompGrant
from app.core.cache import ResponseCache, invalidate_on_commit
from app.core.cache.before_routing import Early, ReaderAnswersBeforeRouting
from app.core.cache.freshness import CacheFreshness
from app.core.cache.version import ContentVersion
from app.core.db import Database, pk, utcnow
from tests.factories import ArticleFactory, Factory, Member

BODY = "Free opening paragraph.\n\n<!-- paywall -->\n\nGATED-PART of the article."
# Headers that differ between any two answers, cached or not.
PER_REQUEST = {"date", "x-request-id"}


def _same_answer(a: Response, b: Response) -> None:
    assert a.status_code == b.status_code
    assert a.content == b.content
    assert {k: v for k, v in a.headers.items() if k not in PER_REQUEST} == {
        k: v for k, v in b.headers.items() if k not in PER_REQUEST
    }


class Downstream:
    """The rest of the app as the middleware sees it: records whether it was asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        await send({"type": "http.response.start", "status": 599, "headers": []})
        await send({"type": "http.response.body", "body": b"downstream"})


def _before(app: FastAPI) -> tuple[Downstream, ReaderAnswersBeforeRouting]:
    """The app's middleware in front of a recording downstream, its routes already learnt."""
    downstream = Downstream()
    cache, answers = app.state.response_cache, app.state.article_answers
    early = {
        "/api/v1/search": Early(search_answers.search_before_routing),
        "/api/v1/search/suggest": Early(search_answers.suggest_before_routing, per_reader=False),
    }
    middleware = ReaderAnswersBeforeRouting(downstream, cache, reader_entitlements, answers, early)
    # As learnt from the first misses.
    middleware._routes = {False: object(), True: object(), **{path: object() for path in early}}
    return downstream, middleware


async def _call(
    app: FastAPI, middleware: ReaderAnswersBeforeRouting, path: str, token: str | None = None
) -> list[Message]:
    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    path, _, query = path.partition("?")
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "app": app,
        "state": {},
    }
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await middleware(scope, receive, send)
    return sent


async def _by_an_editor(
    factory: Factory, articles: ArticleFactory, **fields: Any
) -> tuple[Member, Article, str]:
    """An editor, an article of theirs with `fields`, and the article's path."""
    editor = await factory.member(role=Role.editor)
    article = await articles.make(editor, **fields)
    return editor, article, f"/api/v1/articles/{article.slug}"


async def test_a_cached_page_is_answered_as_the_route_answers_it(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor, article, path = await _by_an_editor(factory, articles, body=BODY, visibility="paid")
    for headers in ({}, editor.headers):
        rendered = await client.get(path, headers=headers)
        cached = await client.get(path, headers=headers)
        _same_answer(rendered, cached)
    assert "GATED-PART" in cached.text
    # The same middleware, in front of a downstream that records being asked: a cached page
    # never reaches it; an unknown slug and a bad token do, where the route answers them.
    downstream, middleware = _before(app)
    sent = await _call(app, middleware, path, editor.token)
    assert downstream.calls == 0 and b"GATED-PART" in sent[-1]["body"]
    sent = await _call(app, middleware, path)
    assert downstream.calls == 0 and b"GATED-PART" not in sent[-1]["body"]
    await _call(app, middleware, "/api/v1/articles/no-such-page")
    await _call(app, middleware, path, "not-a-token")
    await _call(app, middleware, f"{path}/comments")
    assert downstream.calls == 3


async def test_an_article_page_missing_from_the_cache_is_rendered_before_routing(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor, article, path = await _by_an_editor(factory, articles, body=BODY, visibility="paid")
    cache: ResponseCache = app.state.response_cache
    downstream, middleware = _before(app)
    for token in (None, editor.token):
        cache.clear()
        by_route = await client.get(
            path, headers={"Authorization": f"Bearer {token}"} if token else {}
        )
        cache.clear()
        sent = await _call(app, middleware, path, token)
        assert downstream.calls == 0
        assert sent[-1]["body"] == by_route.content
        etag = dict(sent[0]["headers"]).get(b"etag")
        assert etag == (by_route.headers["etag"].encode() if token is None else None)
    assert b"GATED-PART" in sent[-1]["body"]
    # A moved slug goes on to the route, which answers the redirect.
    old = article.slug
    moved = await client.patch(
        f"/api/v1/admin/articles/{article.id}",
        json={"slug": "moved-on", "version": article.version},
        headers=editor.headers,
    )
    assert moved.status_code == 200
    cache.clear()
    await _call(app, middleware, f"/api/v1/articles/{old}")
    assert downstream.calls == 1
    assert (await client.get(f"/api/v1/articles/{old}")).status_code == 301


async def test_a_cached_archive_page_is_answered_as_the_route_answers_it(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, title="In the archive")
    for headers in ({}, editor.headers):
        rendered = await client.get("/api/v1/articles?limit=5", headers=headers)
        cached = await client.get("/api/v1/articles?limit=5", headers=headers)
        _same_answer(rendered, cached)
    assert cached.json()["items"][0]["title"] == "In the archive"
    downstream, middleware = _before(app)
    sent = await _call(app, middleware, "/api/v1/articles?limit=5")
    assert downstream.calls == 0 and b"In the archive" in sent[-1]["body"]
    # Only a query string the route has validated and answered is ever in the cache.
    await _call(app, middleware, "/api/v1/articles?limit=0")
    await _call(app, middleware, "/api/v1/articles?limit=5", "not-a-token")
    assert downstream.calls == 2
    invalid = await client.get("/api/v1/articles?limit=0")
    assert invalid.status_code == 422
    assert (await client.get("/api/v1/articles?limit=0")).status_code == 422


async def test_cached_suggestions_are_answered_as_the_route_answers_them(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, title="Harbour lights")
    path = "/api/v1/search/suggest?q=Harb"
    for headers in ({}, editor.headers):
        rendered = await client.get(path, headers=headers)
        cached = await client.get(path, headers=headers)
        _same_answer(rendered, cached)
    assert cached.json()["titles"][0]["title"] == "Harbour lights"
    downstream, middleware = _before(app)
    sent = await _call(app, middleware, path)
    assert downstream.calls == 0 and sent[-1]["body"] == cached.content
    # The same words spelt otherwise share the answer; what the route would refuse goes on,
    # and so does a repeated `q` (the route reads its last value).
    await _call(app, middleware, "/api/v1/search/suggest?q=harb%21")
    assert downstream.calls == 0
    for refused in ("q=harb" + "%20" * 100, "q=harb&limit=3", "q="):
        await _call(app, middleware, f"/api/v1/search/suggest?{refused}")
        assert (await client.get(f"/api/v1/search/suggest?{refused}")).status_code == 422
    await _call(app, middleware, "/api/v1/search/suggest?q=tide&q=harb")
    assert downstream.calls == 4


async def test_a_search_is_answered_before_routing_as_the_route_answers_it(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, title="Harbour lights", body=BODY, visibility="paid")
    cache: ResponseCache = app.state.response_cache
    downstream, middleware = _before(app)
    for token in (None, editor.token):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        cache.clear()
        by_route = await client.get("/api/v1/search?q=gated&limit=20", headers=headers)
        cache.clear()
        sent = await _call(app, middleware, "/api/v1/search?q=gated", token)
        assert downstream.calls == 0 and sent[-1]["body"] == by_route.content
        etag = dict(sent[0]["headers"]).get(b"etag")
        assert etag == (by_route.headers["etag"].encode() if token is None else None)
    assert b"Harbour lights" in sent[-1]["body"]  # the editor may read the paid text
    # Any other query string, and a bad token, go on to the route.
    for other in ("q=gated&limit=5", "q=gated&sort=date", "q=" + "a" * 201, "q=", "q=a&q=b"):
        await _call(app, middleware, f"/api/v1/search?{other}")
    await _call(app, middleware, "/api/v1/search?q=gated", "not-a-token")
    assert downstream.calls == 6
    assert (await client.get("/api/v1/search?q=" + "a" * 201)).status_code == 422


async def test_a_cached_page_never_outlives_the_readers_access(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor, article, path = await _by_an_editor(factory, articles, body=BODY, visibility="paid")
    reader = await factory.member()
    staff = await factory.member(role=Role.editor)
    db: Database = app.state.db
    async with db.session() as session:
        session.add(CompGrant(user_id=reader.id, reason="press"))
    for member in (reader, staff):
        assert "GATED-PART" in (await client.get(path, headers=member.headers)).text
    # Changed behind the app's back (no staff request, so no cache clear): the full text
    # stays cached for the paid level, yet neither of them may have it any more.
    async with db.session() as session:
        await session.exec(update(CompGrant).values(revoked_at=utcnow()))
        await session.exec(update(User).where(col(User.id) == staff.id).values(disabled=True))
    lapsed = await client.get(path, headers=reader.headers)
    assert lapsed.status_code == 200 and "GATED-PART" not in lapsed.text
    assert (await client.get(path, headers=staff.headers)).status_code == 401


async def _version(db: Database) -> int:
    async with db.session(write=False) as session:
        row = await session.get(ContentVersion, 1)
        return row.version if row else 0


async def test_staff_writes_bump_the_shared_version_and_refusals_do_not(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor, article, path = await _by_an_editor(factory, articles, title="Old title")
    db: Database = app.state.db
    before = await _version(db)
    await client.get(path)
    stale = await client.patch(
        f"/api/v1/admin/articles/{article.id}",
        headers=editor.headers,
        json={"title": "Refused", "version": article.version + 5},
    )
    assert stale.status_code == 409
    assert await _version(db) == before
    edited = await client.patch(
        f"/api/v1/admin/articles/{article.id}",
        headers=editor.headers,
        json={"title": "New title", "version": article.version},
    )
    assert edited.status_code == 200
    assert await _version(db) == before + 1
    assert (await client.get(path)).json()["title"] == "New title"


async def test_a_write_made_by_another_worker_clears_this_workers_cache(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor, article, path = await _by_an_editor(factory, articles, title="Old title")
    cache: ResponseCache = app.state.response_cache
    freshness = CacheFreshness(app.state.db.reads, cache, NEXT_CHANGE_SQL)
    assert await freshness.check() is False
    for _ in range(2):  # an article's answer is kept from its second miss on
        assert (await client.get(path)).json()["title"] == "Old title"
    # Another worker's staff edit: the row changes and the version moves, and this process's
    # cache hears of neither until it checks.
    other_worker = Database(app.state.settings)  # its own caches, none of this process's
    try:
        async with other_worker.session() as session:
            invalidate_on_commit(session)
            await session.exec(
                update(Article).where(col(Article.id) == article.id).values(title="New")
            )
            await derived.article(session, pk(article.id))  # as the service does
    finally:
        await other_worker.dispose()
    assert (await client.get(path)).json()["title"] == "Old title"
    assert await freshness.check() is True
    assert (await client.get(path)).json()["title"] == "New"
    assert await freshness.check() is False


async def test_a_scheduled_article_joins_the_cached_archive_when_its_time_comes(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    await articles.make(editor, title="Already out")
    soon = await articles.make(
        editor,
        title="Coming soon",
        status="scheduled",
        published_at=utcnow() + timedelta(milliseconds=300),
    )
    freshness = CacheFreshness(app.state.db.reads, app.state.response_cache, NEXT_CHANGE_SQL)
    assert await freshness.check() is False
    titles = [a["title"] for a in (await client.get("/api/v1/articles")).json()["items"]]
    assert titles == ["Already out"]
    assert soon.published_at is not None
    while utcnow() <= soon.published_at:
        await asyncio.sleep(0.05)
    assert await freshness.check() is True
    titles = [a["title"] for a in (await client.get("/api/v1/articles")).json()["items"]]
    assert titles == ["Coming soon", "Already out"]


async def test_the_running_app_checks_on_its_own(app: FastAPI) -> None:
    cache: ResponseCache = app.state.response_cache
    other_worker = Database(app.state.settings)
    async with app.router.lifespan_context(app):
        await asyncio.sleep(0.3)  # past the watcher's first look, which only takes note
        cache.put("probe", b"page")
        async with other_worker.session() as session:
            invalidate_on_commit(session)
        await other_worker.dispose()
        for _ in range(100):
            if cache.get("probe") is None:
                break
            await asyncio.sleep(0.05)
        assert cache.get("probe") is None


async def test_comments_clear_the_cached_count_at_once(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """Posting, deleting and hiding a comment change the article page's visible count, which
    sits in the cache: each change is seen by the next read, not after the TTL."""
    editor, article, path = await _by_an_editor(factory, articles)
    reader = await factory.member()

    async def count() -> int:
        page = await client.get(path)
        return int(page.json()["comment_count"])

    assert await count() == 0
    comments = f"/api/v1/articles/{article.slug}/comments"
    posted = [
        (await client.post(comments, json={"body": text}, headers=reader.headers)).json()["id"]
        for text in ("One", "Two", "Three")
    ]
    assert await count() == 3
    await client.delete(f"/api/v1/comments/{posted[0]}", headers=reader.headers)
    assert await count() == 2
    await client.post(f"/api/v1/admin/comments/{posted[1]}/hide", headers=editor.headers)
    assert await count() == 1


async def test_an_author_renaming_themselves_is_seen_on_their_cached_pages(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor, _, path = await _by_an_editor(factory, articles)
    before = (await client.get(path)).json()["authors"]
    renamed = await client.patch(
        "/api/v1/me", json={"display_name": "A New Byline"}, headers=editor.headers
    )
    assert renamed.status_code == 200
    after = (await client.get(path)).json()["authors"]
    assert [a["name"] for a in after] == ["A New Byline"] != [a["name"] for a in before]


async def test_staff_writes_that_readers_never_see_keep_the_cache(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """The role check no longer clears every worker's cache: only changes to what readers see
    do (a label on a member is not one)."""
    editor, _, path = await _by_an_editor(factory, articles)
    admin = await factory.member(role=Role.admin)
    reader = await factory.member()
    for _ in range(2):  # kept from its second miss on
        await client.get(path)
    before = await _version(app.state.db)
    labelled = await client.patch(
        f"/api/v1/admin/members/{reader.id}", json={"labels": ["vip"]}, headers=admin.headers
    )
    assert labelled.status_code == 200, labelled.text
    assert await _version(app.state.db) == before
    cache: ResponseCache = app.state.response_cache
    assert cache.size > 0
