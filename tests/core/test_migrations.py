"""Migrations run up, down and up again on this run's dialect, and match the models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import orjson
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from app.core.db import is_sqlite, utcnow
from app.core.migrate import downgrade, upgrade
from app.models import include_object, metadata
from tests.conftest import create_postgres_database, postgres_admin_url


async def fresh_url(tmp_path: Path) -> str:
    admin = postgres_admin_url()
    if admin:
        return await create_postgres_database(admin)
    return f"sqlite+aiosqlite:///{tmp_path / 'migrations.db'}"


async def _diff(url: str) -> list[Any]:
    engine = create_async_engine(url)

    def compare(connection: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                "render_as_batch": is_sqlite(url),
                "include_object": include_object,
            },
        )
        return list(compare_metadata(context, metadata))

    async with engine.connect() as conn:
        diff = await conn.run_sync(compare)
    await engine.dispose()
    return diff


async def _tables(url: str) -> set[str]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
    await engine.dispose()
    return names


async def test_upgrade_downgrade_upgrade_and_models_agree(tmp_path: Path) -> None:
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url)
    assert set(metadata.tables) <= await _tables(url)
    await anyio.to_thread.run_sync(downgrade, url, "base")
    assert {t for t in await _tables(url) if not t.startswith("article_search")} <= {
        "alembic_version"
    }
    await anyio.to_thread.run_sync(upgrade, url)
    assert await _diff(url) == []


async def test_free_parts_stored_before_the_block_cut_are_rendered_again(tmp_path: Path) -> None:
    """Revision 0008 replaces free parts the old preview rule let gated text into."""
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url, "0007")
    body = "Opening.\n\nMiddle.\n\nThe end holds OLDLEAK."
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO article (id, slug, title, subtitle, body_md, content_html,"
                " preview_html, excerpt, has_paywall_marker, visibility, status, created_at,"
                " updated_at, version, cover_image_alt, comments, word_count, reading_minutes)"
                " VALUES (1, 'short', 'Short', '', :body, :html, :html, :leak, false, 'paid',"
                " 'published', :now, :now, 1, '', 'everyone', 6, 1)"
            ),
            {"body": body, "html": "<p>The end OLDLEAK.</p>", "leak": "OLDLEAK", "now": utcnow()},
        )
        if is_sqlite(url):
            await conn.execute(
                text(
                    "INSERT INTO article_search (rowid, visibility, public_text, body_text)"
                    " VALUES (1, 'paid', 'Short OLDLEAK', 'OLDLEAK')"
                )
            )
        else:
            await conn.execute(
                text(
                    "INSERT INTO article_search (article_id, visibility, public_tsv, full_tsv)"
                    " VALUES (1, 'paid', to_tsvector('simple', 'Short OLDLEAK'),"
                    " to_tsvector('simple', 'OLDLEAK'))"
                )
            )
    await anyio.to_thread.run_sync(upgrade, url)
    async with engine.connect() as conn:
        preview, excerpt = (
            await conn.execute(text("SELECT preview_html, excerpt FROM article WHERE id = 1"))
        ).one()
        if is_sqlite(url):
            matches = await conn.execute(
                text("SELECT count(*) FROM article_search WHERE article_search MATCH :q"),
                {"q": 'public_text : "oldleak"'},
            )
        else:
            matches = await conn.execute(
                text(
                    "SELECT count(*) FROM article_search"
                    " WHERE public_tsv @@ plainto_tsquery('simple', 'oldleak')"
                )
            )
        public_hits = matches.scalar_one()
    await engine.dispose()
    assert "OLDLEAK" not in preview + excerpt
    assert public_hits == 0


async def test_every_article_already_there_gets_its_stored_page(tmp_path: Path) -> None:
    """Revision 0011 renders the page of each article, byline included."""
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url, "0010")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                'INSERT INTO "user" (id, email, display_name, role, email_verified, disabled,'
                " created_at) VALUES (7, 'ed@example.org', 'Ed Byline', 'editor', true, false,"
                " :now)"
            ),
            {"now": utcnow()},
        )
        await conn.execute(
            text(
                "INSERT INTO article (id, slug, title, subtitle, body_md, content_html,"
                " preview_html, excerpt, has_paywall_marker, visibility, status, published_at,"
                " created_at, updated_at, version, cover_image_alt, comments, word_count,"
                " reading_minutes) VALUES (1, 'kept', 'Before pages', '', 'Body', :html,"
                " '<p>Free</p>', 'Free', false, 'paid', 'published', :now, :now, :now, 1, '',"
                " 'everyone', 1, 1)"
            ),
            {"html": '<p>Full "text"</p>', "now": utcnow()},
        )
        await conn.execute(
            text("INSERT INTO article_author (article_id, user_id, position) VALUES (1, 7, 0)")
        )
    await anyio.to_thread.run_sync(upgrade, url)
    async with engine.connect() as conn:
        head, content = (
            await conn.execute(text("SELECT head, content FROM article_page WHERE article_id = 1"))
        ).one()
    await engine.dispose()
    page = orjson.loads(b"{" + bytes(head) + b"}")
    assert page["title"] == "Before pages"
    assert page["authors"] == [{"id": 7, "name": "Ed Byline"}]
    assert orjson.loads(bytes(content)) == '<p>Full "text"</p>'
    # Revision 0015's rules and JSON-LD columns are filled by the same render.
    rules = await _one(url, "SELECT rules, structured FROM article_page WHERE article_id = 1")
    assert orjson.loads(bytes(rules[0]))["v"] == "paid"
    assert orjson.loads(b"{" + bytes(rules[1]) + b"}")["headline"] == "Before pages"


async def _one(url: str, sql: str) -> Any:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        row = (await conn.execute(text(sql))).one()
    await engine.dispose()
    return row


async def test_access_rules_come_and_go_without_touching_what_refers_to_articles(
    tmp_path: Path,
) -> None:
    """Revision 0015 adds columns to `article` in place: on SQLite a rebuild of the table
    would delete every row whose foreign key cascades from it (authors, tags, pages)."""
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url, "0014")
    engine = create_async_engine(url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                'INSERT INTO "user" (id, email, display_name, role, email_verified, disabled,'
                " created_at) VALUES (7, 'ed@example.org', 'Ed', 'editor', true, false, :now)"
            ),
            {"now": utcnow()},
        )
        await conn.execute(
            text(
                "INSERT INTO article (id, slug, title, subtitle, body_md, content_html,"
                " preview_html, excerpt, has_paywall_marker, visibility, status, published_at,"
                " created_at, updated_at, version, cover_image_alt, comments, word_count,"
                " reading_minutes) VALUES (1, 'kept', 'Kept', '', 'Body', '<p>x</p>', '', '',"
                " false, 'public', 'published', :now, :now, :now, 1, '', 'everyone', 1, 1)"
            ),
            {"now": utcnow()},
        )
        await conn.execute(
            text("INSERT INTO article_author (article_id, user_id, position) VALUES (1, 7, 0)")
        )
    await engine.dispose()
    await anyio.to_thread.run_sync(upgrade, url)
    after = await _one(url, "SELECT count(*) FROM article_author")
    moved = await _one(url, "SELECT auto_paywall, gated_at, free_after FROM article")
    await anyio.to_thread.run_sync(downgrade, url, "0014")
    back = await _one(url, "SELECT count(*) FROM article_author")
    assert (after[0], back[0]) == (1, 1)
    assert (bool(moved[0]), moved[1], moved[2]) == (True, None, None)


async def _billing_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_async_engine(url)
    queries = {
        "plans": "SELECT id, name, stripe_price_id FROM plan ORDER BY id",
        "subscriptions": "SELECT id, plan_id, status FROM subscription ORDER BY id",
        "checkouts": "SELECT id, plan_id, idempotency_key FROM checkout_record ORDER BY id",
    }
    async with engine.connect() as conn:
        rows = {
            name: [tuple(r) for r in await conn.execute(text(q))] for name, q in queries.items()
        }
    await engine.dispose()
    return rows


async def test_existing_plans_and_their_subscriptions_move_into_one_default_tier(
    tmp_path: Path,
) -> None:
    """Revision 0014 puts every plan in a default "Paid" tier; nothing that points at a plan
    is lost on the way up or down (SQLite rebuilds the plan table)."""
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url, "0013")
    engine = create_async_engine(url)
    now = {"now": utcnow()}
    async with engine.begin() as conn:
        await conn.execute(
            text(
                'INSERT INTO "user" (id, email, display_name, role, email_verified, disabled,'
                " created_at) VALUES (3, 'payer@example.org', 'Payer', 'reader', true, false,"
                " :now)"
            ),
            now,
        )
        await conn.execute(
            text(
                "INSERT INTO plan (id, name, description, interval, amount, currency, trial_days,"
                " stripe_product_id, stripe_price_id, active, sort_order, created_at) VALUES"
                " (1, 'Monthly', '', 'month', 800, 'usd', 0, 'prod_m', 'price_m', true, 1, :now),"
                " (2, 'Yearly', '', 'year', 8000, 'usd', 14, NULL, NULL, false, 2, :now)"
            ),
            now,
        )
        await conn.execute(
            text(
                "INSERT INTO subscription (id, user_id, provider, provider_subscription_id,"
                " customer_id, plan_id, status, cancel_at_period_end, amount, currency,"
                " interval, created_at, updated_at) VALUES (5, 3, 'stripe', 'sub_1', 'cus_1', 2,"
                " 'active', false, 8000, 'usd', 'year', :now, :now)"
            ),
            now,
        )
        await conn.execute(
            text(
                "INSERT INTO checkout_record (id, user_id, plan_id, idempotency_key, created_at)"
                " VALUES (9, 3, 1, 'key-1', :now)"
            ),
            now,
        )
    before = await _billing_rows(url)
    await anyio.to_thread.run_sync(upgrade, url)
    async with engine.connect() as conn:
        tiers = (await conn.execute(text("SELECT id, name, slug, is_default FROM tier"))).all()
        plans = await conn.execute(text("SELECT id, tier_id FROM plan"))
        tier_of: dict[int, int] = {row.id: row.tier_id for row in plans}
    assert [(name, slug, bool(default)) for _, name, slug, default in tiers] == [
        ("Paid", "paid", True)
    ]
    assert tier_of == {1: tiers[0][0], 2: tiers[0][0]}
    assert await _billing_rows(url) == before
    assert before["subscriptions"] == [(5, 2, "active")]
    assert before["checkouts"] == [(9, 1, "key-1")]

    await anyio.to_thread.run_sync(downgrade, url, "0013")
    assert "tier" not in await _tables(url)
    assert await _billing_rows(url) == before
    await engine.dispose()


async def _subscription_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    engine = create_async_engine(url)
    queries = {
        "subscriptions": "SELECT id, plan_id, status, customer_id FROM subscription ORDER BY id",
        "history": "SELECT id, subscription_id, from_status, to_status FROM subscription_change"
        " ORDER BY id",
    }
    async with engine.connect() as conn:
        rows = {
            name: [tuple(r) for r in await conn.execute(text(q))] for name, q in queries.items()
        }
    await engine.dispose()
    return rows


async def test_plan_change_columns_keep_every_subscription_and_its_history(
    tmp_path: Path,
) -> None:
    """Revision 0016 adds what a downgrade keeps and the plans of each history row; the
    subscriptions and their history survive the way up and down (SQLite builds the
    subscription table again, which would cascade to the history)."""
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url, "0015")
    engine = create_async_engine(url)
    now = {"now": utcnow()}
    async with engine.begin() as conn:
        tier = (await conn.execute(text("SELECT id FROM tier"))).scalar_one()
        await conn.execute(
            text(
                'INSERT INTO "user" (id, email, display_name, role, email_verified, disabled,'
                " created_at) VALUES (3, 'payer@example.org', 'Payer', 'reader', true, false,"
                " :now)"
            ),
            now,
        )
        await conn.execute(
            text(
                "INSERT INTO plan (id, tier_id, name, description, interval, amount, currency,"
                " trial_days, stripe_price_id, active, sort_order, created_at) VALUES"
                " (1, :tier, 'Monthly', '', 'month', 800, 'usd', 0, 'price_m', true, 1, :now)"
            ),
            now | {"tier": tier},
        )
        await conn.execute(
            text(
                "INSERT INTO subscription (id, user_id, provider, provider_subscription_id,"
                " customer_id, plan_id, status, cancel_at_period_end, amount, currency,"
                " interval, created_at, updated_at) VALUES (5, 3, 'stripe', 'sub_1', 'cus_1', 1,"
                " 'active', false, 800, 'usd', 'month', :now, :now)"
            ),
            now,
        )
        await conn.execute(
            text(
                "INSERT INTO subscription_change (id, subscription_id, user_id, from_status,"
                " to_status, amount, currency, interval, occurred_at) VALUES"
                " (7, 5, 3, NULL, 'active', 800, 'usd', 'month', :now)"
            ),
            now,
        )
    before = await _subscription_rows(url)
    assert before == {
        "subscriptions": [(5, 1, "active", "cus_1")],
        "history": [(7, 5, None, "active")],
    }
    await anyio.to_thread.run_sync(upgrade, url)
    assert await _subscription_rows(url) == before
    async with engine.connect() as conn:
        kept = (await conn.execute(text("SELECT kept_plan_id, kept_until FROM subscription"))).one()
        plans = await conn.execute(
            text(
                "SELECT from_plan_id, to_plan_id, from_tier_id, to_tier_id FROM subscription_change"
            )
        )
        assert tuple(kept) == (None, None) and [tuple(r) for r in plans] == [(None,) * 4]
    async with engine.begin() as conn:
        if is_sqlite(url):  # the app's connections enforce foreign keys; this one is plain
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        # The kept plan goes with its plan row (ON DELETE SET NULL), the subscription stays.
        await conn.execute(text("UPDATE subscription SET kept_plan_id = 1"))
        await conn.execute(text("UPDATE subscription SET plan_id = NULL"))
        await conn.execute(text("DELETE FROM plan WHERE id = 1"))
        left = (await conn.execute(text("SELECT id, kept_plan_id FROM subscription"))).one()
        assert tuple(left) == (5, None)
        await conn.execute(text("INSERT INTO plan (id, tier_id, name, description, interval,"
                                " amount, currency, trial_days, stripe_price_id, active,"
                                " sort_order, created_at) VALUES (1, :tier, 'Monthly', '',"
                                " 'month', 800, 'usd', 0, 'price_m', true, 1, :now)"),
                           now | {"tier": tier})  # fmt: skip
        await conn.execute(text("UPDATE subscription SET plan_id = 1"))
    await anyio.to_thread.run_sync(downgrade, url, "0015")
    assert await _subscription_rows(url) == before
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("subscription")}
        )
    assert not columns & {"kept_plan_id", "kept_until", "change_key"}
    await engine.dispose()


async def _comp_rows(url: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id, user_id, reason, ends_at IS NULL FROM comp_grant ORDER BY id")
        )
        found = [tuple(r) for r in rows]
    await engine.dispose()
    return found


async def test_comps_made_before_tiers_keep_every_tier_and_a_tier_with_comps_stays(
    tmp_path: Path,
) -> None:
    """Revision 0017 gives comp_grant a tier: existing comps keep NULL (every tier), a comp
    can name a tier, and that tier cannot be deleted under it (RESTRICT, never SET NULL,
    which would widen the comp to every tier). Down again, the comps are still there."""
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url, "0014")
    engine = create_async_engine(url)
    now = {"now": utcnow()}
    async with engine.begin() as conn:
        await conn.execute(
            text(
                'INSERT INTO "user" (id, email, display_name, role, email_verified, disabled,'
                " created_at) VALUES (4, 'press@example.org', 'Press', 'reader', true, false,"
                " :now)"
            ),
            now,
        )
        await conn.execute(
            text(
                "INSERT INTO comp_grant (id, user_id, reason, starts_at, ends_at) VALUES"
                " (7, 4, 'press', :now, NULL), (8, 4, 'trial', :now, :now)"
            ),
            now,
        )
    before = await _comp_rows(url)
    await anyio.to_thread.run_sync(upgrade, url)
    async with engine.begin() as conn:
        tiers = await conn.execute(text("SELECT comp_grant.tier_id FROM comp_grant"))
        assert [row[0] for row in tiers] == [None, None]
        paid = (await conn.execute(text("SELECT id FROM tier WHERE slug = 'paid'"))).scalar_one()
        await conn.execute(text("UPDATE comp_grant SET tier_id = :t WHERE id = 8"), {"t": paid})
    assert await _comp_rows(url) == before
    refused = False
    try:
        async with engine.begin() as conn:
            if is_sqlite(url):
                # The app's engines turn foreign keys on; this bare one does it itself.
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.execute(text("DELETE FROM plan"))
            await conn.execute(text("DELETE FROM tier WHERE id = :t"), {"t": paid})
    except IntegrityError:
        refused = True
    assert refused
    async with engine.connect() as conn:
        kept = await conn.execute(text("SELECT tier_id FROM comp_grant WHERE id = 8"))
        assert kept.scalar_one() == paid

    await anyio.to_thread.run_sync(downgrade, url, "0014")
    assert await _comp_rows(url) == before


async def _delivery_rows(url: str) -> list[tuple[Any, ...]]:
    return await _rows(url, "SELECT id, issue_id, email, paid, member, status FROM delivery")


async def _rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        rows = [tuple(r) for r in await conn.execute(text(f"{sql} ORDER BY 1"))]
    await engine.dispose()
    return rows


async def test_newsletter_segments_keep_every_delivery_and_give_it_no_tier(
    tmp_path: Path,
) -> None:
    """Revision 0018 adds the tiers of a segment and each delivery's tiers; deliveries
    already there keep their flags and get no tier (they render as before), both ways."""
    url = await fresh_url(tmp_path)
    await anyio.to_thread.run_sync(upgrade, url, "0016")
    engine = create_async_engine(url)
    now = {"now": utcnow()}
    async with engine.begin() as conn:
        for sql in (
            "INSERT INTO newsletter (id, slug, name, description, sender_name, sender_email,"
            " default_for_signups, visibility, active, created_at) VALUES (1, 'daily',"
            " 'Daily', '', '', '', true, 'public', true, :now)",
            "INSERT INTO newsletter_issue (id, newsletter_id, subject, preheader, body_md,"
            " segment, status, created_at, recipients) VALUES (2, 1, 'Today', '', 'Hi.', 'paid',"
            " 'sending', :now, 2)",
            "INSERT INTO subscriber (id, email, status, source, created_at) VALUES"
            " (3, 'a@example.org', 'active', '', :now), (4, 'b@example.org', 'active', '', :now)",
            "INSERT INTO delivery (id, issue_id, subscriber_id, email, paid, member, status,"
            " attempts, unknown_retried, next_attempt_at, message_id) VALUES"
            " (5, 2, 3, 'a@example.org', true, true, 'sent', 1, false, :now, '<m5>'),"
            " (6, 2, 4, 'b@example.org', false, false, 'pending', 0, false, :now, '')",
        ):
            await conn.execute(text(sql), now)
    before = await _delivery_rows(url)
    assert [r[0] for r in before] == [5, 6]
    await anyio.to_thread.run_sync(upgrade, url)
    assert await _delivery_rows(url) == before
    assert await _rows(url, "SELECT id, tiers FROM delivery") == [(5, ""), (6, "")]
    async with engine.begin() as conn:
        if is_sqlite(url):  # the app's connections enforce foreign keys; this one is plain
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        tier = (await conn.execute(text("SELECT id FROM tier"))).scalar_one()
        await conn.execute(text("UPDATE newsletter_issue SET segment = 'tiers' WHERE id = 2"))
        await conn.execute(
            text("INSERT INTO newsletter_issue_tier (issue_id, tier_id) VALUES (2, :tier)"),
            {"tier": tier},
        )
        await conn.execute(text("UPDATE delivery SET tiers = :t WHERE id = 5"), {"t": str(tier)})
    assert await _rows(url, "SELECT issue_id, tier_id FROM newsletter_issue_tier") == [(2, tier)]
    await anyio.to_thread.run_sync(downgrade, url, "0016")
    assert await _delivery_rows(url) == before
    async with engine.connect() as conn:
        columns = await conn.run_sync(
            lambda c: {col["name"] for col in inspect(c).get_columns("delivery")}
        )
    assert "tiers" not in columns
    assert "newsletter_issue_tier" not in await _tables(url)
    await engine.dispose()
