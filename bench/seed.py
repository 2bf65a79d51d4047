"""Fill a database at archive scale, fast: bulk inserts of articles, tags, authors, members.

    python -m bench.seed --database-url URL --articles 100000 --members 100000

Bodies are 800–3,000 words of Markdown with sub-headings, a paywall marker in most; a pool
of distinct bodies is rendered once with the real renderer and shared, so seeding takes
minutes, not hours.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from sqlalchemy import insert, text

from app.accounts.models import User
from app.articles import jobs, page_parts, search_index
from app.articles.markdown import Renderer, plain_text, preview_rule
from app.articles.models import Article, ArticleAuthor, ArticleTag, Tag
from app.articles.search import public_words
from app.billing.models import CompGrant, Subscription
from app.core.config import Settings
from app.core.db import Database, is_sqlite
from app.core.migrate import upgrade
from app.core.security import PasswordHasher

WORDS = [
    "harbour",
    "council",
    "ferry",
    "market",
    "tide",
    "archive",
    "budget",
    "school",
    "library",
    "festival",
    "quay",
    "fleet",
    "reporter",
    "evidence",
    "minutes",
    "rates",
    "housing",
    "transport",
    "election",
    "river",
    "storm",
    "pier",
    "lease",
    "record",
    "inquiry",
    "garden",
    "station",
    "bakery",
    "lifeboat",
    "hospital",
    "teacher",
    "parish",
    "weather",
    "street",
]
RARE = ["quillwort", "brackenridge", "saltmarsh"]
BODY_POOL = 300
CHUNK = 2000
PAID_READER_EMAIL = "paid-reader@bench.example"
PAID_READER_PASSWORD = "bench paid reader password"  # noqa: S105 - a throwaway bench account
ADMIN_EMAIL = "admin@bench.example"
ADMIN_PASSWORD = "bench admin password"  # noqa: S105 - a throwaway bench account


def fresh_database(database: str, directory: Path) -> str:
    """The URL of an empty database: a throwaway PostgreSQL one (under
    scripts/with-postgres.sh), or an SQLite file in `directory`."""
    if database != "postgres":
        return f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    admin = os.environ.get("BROADSHEET_TEST_DATABASE_URL")
    if not admin:
        raise SystemExit("run under scripts/with-postgres.sh for PostgreSQL")
    from tests.conftest import create_postgres_database

    return asyncio.run(create_postgres_database(admin))


# Every table, index and TOAST table of ours (and the catalog's TOAST, which is small).
_PREWARM = """SELECT count(pg_prewarm(c.oid, 'read')) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'i', 't') AND n.nspname IN ('public', 'pg_toast')"""


async def warm(url: str) -> int:
    """Read a seeded PostgreSQL database's files once into the OS page cache, and give back
    how many relations were read (0 where pg_prewarm is not to be had).

    This VM's proactive reclaim keeps the page cache near a few GB, so after an SQLite run
    (its seed copy is 7 GB) the database's pages were read from disk during the every-slug
    scenarios: 1t at 0.29 of the bare endpoint cold, 0.44 once warm (BENCHMARKS.md).
    """
    dsn = url.replace("postgresql+asyncpg://", "postgresql://", 1)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        return int(await conn.fetchval(_PREWARM))
    except asyncpg.PostgresError as exc:  # no contrib, or not allowed to create it
        print(f"not prewarmed: {exc}", flush=True)  # noqa: T201
        return 0
    finally:
        await conn.close()


def make_body(rng: random.Random, n: int) -> str:
    words = rng.randint(800, 3000)
    paragraphs, written = [], 0
    while written < words:
        size = rng.randint(40, 120)
        sentence = " ".join(rng.choice(WORDS) for _ in range(size))
        if rng.random() < 0.02:
            sentence += " " + RARE[n % len(RARE)]
        paragraphs.append(sentence.capitalize() + ".")
        written += size
        if len(paragraphs) % 5 == 0:
            paragraphs.append(f"## {rng.choice(WORDS).title()} {rng.choice(WORDS)}")
    if rng.random() < 0.8:
        paragraphs.insert(3, "<!-- paywall -->")
    return "\n\n".join(paragraphs)


async def seed(url: str, articles: int, members: int, *, seed_value: int = 7) -> dict[str, float]:
    started = time.perf_counter()
    await asyncio.to_thread(upgrade, url)
    settings = Settings(database_url=url, jwt_secret="x" * 40)
    db = Database(settings)
    rng = random.Random(seed_value)
    renderer = Renderer("https://bench.example", preview_rule(settings))
    pool = []
    for n in range(BODY_POOL):
        md = make_body(rng, n)
        out = renderer.render(md, gated=True, preview_blocks=None, excerpt_override=None)
        pool.append((md, out, plain_text(out.content_html)))
    hasher = PasswordHasher(
        settings.model_copy(
            update={
                "password_time_cost": 2,
                "password_memory_kib": 19456,
                "password_parallelism": 1,
            }
        )
    )
    shared_hash = await hasher.hash("bench member password")
    now = datetime.now(UTC)
    sqlite = is_sqlite(url)
    async with db.engine.begin() as conn:
        await conn.execute(
            insert(User),
            [
                {
                    "email": f"author{i}@bench.example",
                    "display_name": f"Author {i}",
                    "role": "author",
                    "password_hash": shared_hash,
                    "email_verified": True,
                    "disabled": False,
                    "created_at": now,
                }
                for i in range(50)
            ],
        )
        author_ids = [
            r[0]
            for r in (
                await conn.execute(
                    text("SELECT id FROM \"user\" WHERE role = 'author' ORDER BY id")
                )
            ).all()
        ]
        await conn.execute(
            insert(Tag), [{"slug": f"tag-{i}", "name": f"Tag {i}"} for i in range(200)]
        )
        tag_ids = [r[0] for r in (await conn.execute(text("SELECT id FROM tag ORDER BY id"))).all()]
        visibilities = ["public"] * 4 + ["members"] * 3 + ["paid"] * 3
        for start in range(0, articles, CHUNK):
            rows, authors, tags, search = [], [], [], []
            for i in range(start, min(start + CHUNK, articles)):
                md, out, body_text = pool[i % BODY_POOL]
                rows.append(
                    {
                        "id": i + 1,
                        "slug": f"bench-article-{i}",
                        "title": f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} number {i}",
                        "subtitle": "A standfirst about the town",
                        "body_md": md,
                        "content_html": out.content_html,
                        "preview_html": out.preview_html,
                        "excerpt": out.excerpt,
                        "has_paywall_marker": out.has_marker,
                        "visibility": visibilities[i % 10],
                        "status": "published",
                        "published_at": now - timedelta(minutes=5 * (articles - i)),
                        "created_at": now,
                        "updated_at": now,
                        "version": 1,
                        "cover_image_alt": "",
                        "comments": "everyone",
                        "word_count": out.word_count,
                        "reading_minutes": out.reading_minutes,
                    }
                )
                authors.append({"article_id": i + 1, "user_id": author_ids[i % 50], "position": 0})
                tags.append({"article_id": i + 1, "tag_id": tag_ids[i % 200]})
                row = rows[-1]
                search.append(
                    search_index.entry_params(
                        search_index.SearchDocument(
                            article_id=i + 1,
                            status="published",
                            published_at=row["published_at"],  # type: ignore[arg-type]
                            visibility=visibilities[i % 10],
                            title=str(row["title"]),
                            public_text=public_words(
                                str(row["subtitle"]),
                                out.excerpt,
                                [f"Tag {i % 200}"],
                                [f"Author {i % 50}"],
                            ),
                            body_text=body_text,
                            tag_ids=(tag_ids[i % 200],),
                            author_ids=(author_ids[i % 50],),
                        )
                    )
                )
            await conn.execute(insert(Article), rows)
            await conn.execute(insert(ArticleAuthor), authors)
            await conn.execute(insert(ArticleTag), tags)
            for statement in search_index.INSERT_SQL["sqlite" if sqlite else "postgresql"]:
                await conn.execute(text(statement), search)
        if not sqlite:
            await conn.execute(
                text(
                    "SELECT setval(pg_get_serial_sequence('article', 'id'), "
                    "(SELECT max(id) FROM article))"
                )
            )
        # Each article's stored page, as the app renders it when an article is written.
        await conn.run_sync(page_parts.render_pages, page_parts.publication(settings))
        for start in range(0, members, CHUNK):
            users = [
                {
                    "email": f"member{i}@bench.example",
                    "display_name": f"Member {i}",
                    "role": "reader",
                    "password_hash": shared_hash,
                    "email_verified": True,
                    "disabled": False,
                    "created_at": now,
                }
                for i in range(start, min(start + CHUNK, members))
            ]
            await conn.execute(insert(User), users)
        member_ids = [
            r[0]
            for r in (
                await conn.execute(
                    text("SELECT id FROM \"user\" WHERE role = 'reader' ORDER BY id")
                )
            ).all()
        ]
        paid = member_ids[: members // 10]
        comped = member_ids[members // 10 : members // 10 + members // 50]
        for start in range(0, len(paid), CHUNK):
            await conn.execute(
                insert(Subscription),
                [
                    {
                        "user_id": uid,
                        "provider": "stripe",
                        "provider_subscription_id": f"sub_bench_{uid}",
                        "customer_id": f"cus_bench_{uid}",
                        "status": "active",
                        "cancel_at_period_end": False,
                        "current_period_end": now + timedelta(days=20),
                        "amount": 800,
                        "currency": "usd",
                        "interval": "month",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for uid in paid[start : start + CHUNK]
                ],
            )
        if comped:
            await conn.execute(
                insert(CompGrant),
                [
                    {"user_id": uid, "reason": "bench", "starts_at": now - timedelta(days=1)}
                    for uid in comped
                ],
            )
        await conn.execute(
            insert(User),
            [
                {
                    "email": email,
                    "display_name": name,
                    "role": role,
                    "password_hash": await hasher.hash(password),
                    "email_verified": True,
                    "disabled": False,
                    "created_at": now,
                }
                for email, name, role, password in (
                    (PAID_READER_EMAIL, "Paid Reader", "reader", PAID_READER_PASSWORD),
                    (ADMIN_EMAIL, "Bench Admin", "admin", ADMIN_PASSWORD),
                )
            ],
        )
        reader_id = (
            await conn.execute(
                text('SELECT id FROM "user" WHERE email = :e'), {"e": PAID_READER_EMAIL}
            )
        ).scalar_one()
        await conn.execute(
            insert(Subscription),
            [
                {
                    "user_id": reader_id,
                    "provider": "stripe",
                    "provider_subscription_id": "sub_bench_reader",
                    "customer_id": "cus_bench_reader",
                    "status": "active",
                    "cancel_at_period_end": False,
                    "current_period_end": now + timedelta(days=20),
                    "amount": 800,
                    "currency": "usd",
                    "interval": "month",
                    "created_at": now,
                    "updated_at": now,
                }
            ],
        )
    if sqlite:
        async with db.engine.connect() as conn:
            await conn.execute(text("ANALYZE"))
        # The bulk load left the search index in many segments; in production the worker's
        # merge job takes them into one within the hour, so the benchmarks read it merged.
        while await jobs.merge_search_index(db, settings):
            pass
    else:
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE"))
    await db.dispose()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "articles": articles,
        "members": members,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--members", type=int, default=100_000)
    args = parser.parse_args()
    print(asyncio.run(seed(args.database_url, args.articles, args.members)))


if __name__ == "__main__":
    main()
