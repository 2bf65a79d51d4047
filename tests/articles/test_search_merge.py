"""The worker's merge of the SQLite search index: it runs until one segment is left, then
waits out its interval (whichever process merged last), and search finds the same before
and after."""

from __future__ import annotations

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from app.articles import jobs, search_rebuild
from app.articles.jobs import merge_search_index
from app.articles.search_index import SEARCH_TABLE, TITLE_TABLE
from app.core.db import Database
from tests.articles.test_search import found
from tests.factories import ArticleFactory, Factory


async def _segments(app: FastAPI, table: str) -> int:
    async with app.state.db.session(write=False) as session:
        conn = await session.connection()
        found: int = await conn.run_sync(search_rebuild.segments, table)
    return found


async def _merged(app: FastAPI) -> None:
    # The suite's tables keep their segments (and delete markers) from earlier tests, and
    # FTS5's automerge folds them in as writes come: from one segment, six writes leave
    # several whatever came before.
    while await merge_search_index(app.state.db, app.state.settings):
        pass


async def test_merge_runs_until_one_segment_and_keeps_every_match(
    app: FastAPI,
    client: AsyncClient,
    factory: Factory,
    articles: ArticleFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(jobs, "MERGE_EVERY", 0.0)
    await _merged(app)
    staff = await factory.member(role=Role.editor)
    # Each article is its own transaction, so each adds a segment to both tables.
    for n in range(6):
        await articles.make(staff, title=f"Harbour tide {n}", slug=f"tide-{n}", body="Low water.")
    before = {q: await found(client, f"q={q}") for q in ("harbour", "tide+1", "harb", "water")}
    assert before["harbour"] == [f"tide-{n}" for n in range(5, -1, -1)]
    db, settings = app.state.db, app.state.settings
    if db.is_sqlite:
        assert await _segments(app, SEARCH_TABLE) > 1
    rounds = [await merge_search_index(db, settings)]
    while rounds[-1] and len(rounds) < 50:
        rounds.append(await merge_search_index(db, settings))
    assert rounds[-1] == 0
    if db.is_sqlite:
        assert rounds[0] > 0
        assert [await _segments(app, t) for t in (SEARCH_TABLE, TITLE_TABLE)] == [1, 1]
    assert await merge_search_index(db, settings) == 0  # one segment: nothing to do
    assert {q: await found(client, f"q={q}") for q in before} == before


async def test_merge_starts_again_only_after_its_interval(
    app: FastAPI, factory: Factory, articles: ArticleFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    db, settings = app.state.db, app.state.settings
    if not db.is_sqlite:
        assert await merge_search_index(db, settings) == 0
        return
    staff = await factory.member(role=Role.editor)
    await _merged(app)
    for n in range(2):
        await articles.make(staff, title=f"Pier {n}", slug=f"pier-{n}", body="Gulls.")
    # Within the interval the new segments wait: a merge rewrites the whole index.
    assert await merge_search_index(db, settings) == 0
    assert await _segments(app, SEARCH_TABLE) > 1
    monkeypatch.setattr(jobs, "MERGE_EVERY", 0.0)
    assert await merge_search_index(db, settings) > 0
    while await merge_search_index(db, settings):
        pass
    assert await _segments(app, SEARCH_TABLE) == 1


async def test_a_merge_in_one_process_holds_off_the_others(
    app: FastAPI, factory: Factory, articles: ArticleFactory
) -> None:
    db, settings = app.state.db, app.state.settings
    if not db.is_sqlite:
        pytest.skip("SQLite only: the job does nothing on PostgreSQL (the test above checks it)")
    await _merged(app)
    staff = await factory.member(role=Role.editor)
    for n in range(2):
        await articles.make(staff, title=f"Quay {n}", slug=f"quay-{n}", body="Nets.")
    # A second worker process: its own Database on the same file, no merge of its own yet.
    other = Database(settings)
    try:
        assert await merge_search_index(other, settings) == 0
    finally:
        await other.dispose()
    assert await _segments(app, SEARCH_TABLE) > 1
