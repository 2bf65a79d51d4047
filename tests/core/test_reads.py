"""Direct reads: parameters in both dialects, and timestamps that compare like the ORM's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import FastAPI

from app.core.reads import Query, parse_ts

STAMP = Query.portable(
    "SELECT published_at FROM article WHERE slug = :slug AND published_at <= :now"
)


def test_named_parameters_become_numbered_for_postgres() -> None:
    query = Query(sqlite="", postgres="SELECT :b, :a, :b, x::text WHERE y = :a_1")
    sql, args = query.for_postgres({"a": 1, "b": 2, "a_1": 3})
    assert sql == "SELECT $1, $2, $1, x::text WHERE y = $3"
    assert args == [2, 1, 3]


async def test_a_stored_timestamp_compares_equal_to_itself(app: FastAPI) -> None:
    """The boundary case of `published_at <= now`, on whole and fractional seconds."""
    from app.articles.models import Article

    moments = {
        "whole": datetime(2026, 5, 1, 9, 30, tzinfo=UTC),
        "fractional": datetime(2026, 5, 1, 9, 30, 0, 250, tzinfo=UTC),
    }
    async with app.state.db.session() as session:
        for slug, moment in moments.items():
            session.add(Article(slug=slug, title=slug, published_at=moment))
    reads = app.state.reads
    for slug, moment in moments.items():
        row = await reads.one(STAMP, {"slug": slug, "now": reads.ts(moment)})
        assert row is not None, slug
        assert parse_ts(row[0]) == moment
        earlier = reads.ts(moment - timedelta(microseconds=1))
        assert await reads.one(STAMP, {"slug": slug, "now": earlier}) is None
