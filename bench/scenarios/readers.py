"""What readers request in the HTTP scenarios, read from the seeded database.

Scenarios 1-4 name a sample (5,000 slugs, fixed queries) that the response cache holds once
primed. The tail scenarios of issue 18 name what a real archive is asked for, which no cache
holds: (1t) every published article anonymously, (2t) every article as a paying reader, (3t)
the first page of every tag and of every author, and (m) page views as a publication sees
them, 80 % on 50 hot articles and 20 % spread over the whole archive.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import Row, bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.pagination import encode_cursor
from app.core.types import UTCDateTime
from bench import seed as seeding
from bench.scenarios import search_load

SAMPLE = 5_000
HOT_ARTICLES = 50
HOT_SHARE = 0.8
MIXED_PATHS = 50_000


@dataclass(frozen=True)
class Readers:
    """What the HTTP scenarios request, and the paying reader's bearer header."""

    sample: list[str]  # article paths of a random sample of slugs
    every: list[str]  # article paths of every live article
    first_pages: list[str]  # the first archive page of every tag and every author
    deep_cursor: str
    paid: str

    def mixed(self, seed: int = 11) -> list[str]:
        """Page views: HOT_SHARE of them on a few hot articles, the rest over the archive."""
        rng = random.Random(seed)
        hot = rng.sample(self.every, HOT_ARTICLES)
        hot_views = int(MIXED_PATHS * HOT_SHARE)
        views = [rng.choice(hot) for _ in range(hot_views)]
        views += [rng.choice(self.every) for _ in range(MIXED_PATHS - hot_views)]
        rng.shuffle(views)
        return views


def _article(slug: str) -> str:
    return f"/api/v1/articles/{slug}"


async def load(url: str, base: str) -> Readers:
    """Read the scenarios' paths from the database at `url`; log the paying reader in."""
    engine = create_async_engine(url)
    live = text(
        "SELECT slug FROM article WHERE status = 'published' AND published_at <= :now ORDER BY id"
    ).bindparams(bindparam("now", type_=UTCDateTime()))
    async with engine.connect() as conn:
        every = [r[0] for r in await conn.execute(live, {"now": datetime.now(UTC)})]
        tags = [r[0] for r in await conn.execute(text("SELECT slug FROM tag ORDER BY slug"))]
        authors = [
            r[0]
            for r in await conn.execute(
                text("SELECT DISTINCT user_id FROM article_author ORDER BY user_id")
            )
        ]
        deep = (
            await conn.execute(
                text(
                    "SELECT published_at, id FROM article "
                    "ORDER BY published_at DESC, id DESC LIMIT 1 OFFSET 40000"
                )
            )
        ).first()
    await engine.dispose()
    token = httpx.post(
        f"{base}/api/v1/auth/login",
        json={"email": seeding.PAID_READER_EMAIL, "password": seeding.PAID_READER_PASSWORD},
        timeout=30,
    ).json()["access_token"]
    return Readers(
        sample=[_article(s) for s in random.Random(3).sample(every, min(SAMPLE, len(every)))],
        every=[_article(s) for s in every],
        first_pages=[f"/api/v1/articles?limit=20&tag={t}" for t in tags]
        + [f"/api/v1/articles?limit=20&author={a}" for a in authors],
        deep_cursor=_cursor(deep),
        paid=f"Bearer {token}",
    )


def _cursor(deep: Row[Any] | None) -> str:
    if deep is None:
        return encode_cursor(datetime.now(UTC), 0)
    published_at: datetime | str = deep[0]
    if isinstance(published_at, str):
        published_at = datetime.fromisoformat(published_at)
    if published_at.tzinfo is None:
        published_at = published_at.replace(tzinfo=UTC)
    return encode_cursor(published_at, int(deep[1]))


def http_runs(readers: Readers, articles: int = 100_000) -> dict[str, tuple[list[str], str | None]]:
    """Each HTTP scenario with the cache on (of an archive of `articles`): its paths and
    Authorization header."""
    return {
        "1_article_anonymous": (readers.sample, None),
        "2_article_paid_reader": (readers.sample, readers.paid),
        "3a_list_first_page": (["/api/v1/articles?limit=20"], None),
        "3b_list_deep_page": ([f"/api/v1/articles?limit=20&cursor={readers.deep_cursor}"], None),
        "4a_search_common": ([f"/api/v1/search?q={w}" for w in seeding.WORDS[:10]], None),
        "4b_search_rare": ([f"/api/v1/search?q={w}" for w in seeding.RARE], None),
        "1t_article_anonymous_every_slug": (readers.every, None),
        "2t_article_paid_reader_every_slug": (readers.every, readers.paid),
        "3t_first_page_every_tag_and_author": (readers.first_pages, None),
        "m_mixed_page_views": (readers.mixed(), None),
        "4d_search_distinct": (search_load.distinct_queries(articles), None),
        "4s_search_suggest": (search_load.suggest_prefixes(), None),
    }
