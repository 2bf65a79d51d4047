"""The live-article rule is one rule: the ORM expression and the raw SQL agree on every case."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import FastAPI
from sqlalchemy import update
from sqlmodel import col, select

from app.accounts.models import Role
from app.articles.live import LIVE_SQL, NEXT_CHANGE_SQL, is_live
from app.articles.models import Article
from app.core.db import Database, Query, parse_ts, utcnow
from tests.factories import ArticleFactory, Factory

NOW = utcnow()
PAST, FUTURE, SOONER = NOW - timedelta(days=1), NOW + timedelta(days=2), NOW + timedelta(days=1)
# title: (status, published_at, live at NOW)
CASES: dict[str, tuple[str, datetime | None, bool]] = {
    "draft": ("draft", None, False),
    "draft once published": ("draft", PAST, False),
    "scheduled, time come": ("scheduled", PAST, True),
    "scheduled, to come": ("scheduled", FUTURE, False),
    "published": ("published", PAST, True),
    "published, dated ahead": ("published", SOONER, False),
    "published, no time": ("published", None, False),
    "archived": ("archived", PAST, False),
    "archived, dated ahead": ("archived", NOW + timedelta(hours=1), False),
}
RAW_LIVE = Query(
    sqlite=f"SELECT a.title FROM article a WHERE {LIVE_SQL['sqlite']}",  # noqa: S608
    postgres=f"SELECT a.title FROM article a WHERE {LIVE_SQL['postgres']}",  # noqa: S608
)


async def _table(factory: Factory, articles: ArticleFactory, db: Database) -> None:
    editor = await factory.member(role=Role.editor)
    for title, (status, published_at, _) in CASES.items():
        made = await articles.make(editor, title=title, status="draft")
        async with db.session() as session:
            await session.exec(
                update(Article)
                .where(col(Article.id) == made.id)
                .values(status=status, published_at=published_at)
            )


async def test_the_orm_and_the_raw_sql_agree_on_what_is_live(
    app: FastAPI, factory: Factory, articles: ArticleFactory
) -> None:
    db: Database = app.state.db
    await _table(factory, articles, db)
    expected = {title for title, (_, _, live) in CASES.items() if live}
    async with db.session(write=False) as session:
        orm = set((await session.exec(select(Article.title).where(is_live(NOW)))).all())
    raw = {row[0] for row in await db.reads.all(RAW_LIVE, {"now": db.reads.ts(NOW)})}
    assert orm == expected
    assert raw == expected


async def test_the_next_go_live_time_is_the_nearest_live_status_still_ahead(
    app: FastAPI, factory: Factory, articles: ArticleFactory
) -> None:
    db: Database = app.state.db
    await _table(factory, articles, db)
    row = await db.reads.one(Query.portable(NEXT_CHANGE_SQL), {"now": db.reads.ts(NOW)})
    assert row is not None
    # Archived articles never go live by themselves; the published one dated ahead does.
    assert parse_ts(row[0]) == SOONER
