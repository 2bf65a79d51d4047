"""Articles for chosen tiers and time rules, through the API: what staff may write, what
each reader is answered, the paywall's offer, JSON-LD, and answers cached past a rule time."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from app.articles import derived
from app.articles.live import NEXT_CHANGE_SQL
from app.articles.schemas import Publication
from app.core.cache.freshness import CacheFreshness
from app.core.db import utcnow
from tests.factories import ArticleFactory, Factory, Member

BODY = "Open paragraph.\n\n<!-- paywall -->\n\nTIER-ONLY text behind the wall."


async def _create(client: AsyncClient, editor: Member, **fields: Any) -> Any:
    body = {"title": "For supporters", "body_md": BODY, **fields}
    return await client.post("/api/v1/admin/articles", headers=editor.headers, json=body)


async def _publish(client: AsyncClient, editor: Member, article_id: int, **body: Any) -> None:
    answer = await client.post(
        f"/api/v1/admin/articles/{article_id}/publish", headers=editor.headers, json=body
    )
    assert answer.status_code == 200, answer.text


async def _read(client: AsyncClient, slug: str, reader: Member | None = None) -> dict[str, Any]:
    answer = await client.get(f"/api/v1/articles/{slug}", headers=reader.headers if reader else {})
    assert answer.status_code == 200, answer.text
    page: dict[str, Any] = answer.json()
    return page


async def test_staff_write_tier_articles_and_bad_combinations_change_nothing(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    await factory.tier("supporter")
    await factory.tier("print")
    made = await _create(client, editor, visibility="tiers", tiers=["supporter", "print"])
    assert made.status_code == 201, made.text
    assert sorted(made.json()["tiers"]) == ["print", "supporter"]
    refused: dict[str, dict[str, Any]] = {
        "tiers without a tier": {"visibility": "tiers"},
        "tiers on a paid article": {"visibility": "paid", "tiers": ["supporter"]},
        "unknown tier": {"visibility": "tiers", "tiers": ["gold"]},
    }
    codes = {}
    for name, fields in refused.items():
        answer = await _create(client, editor, **fields)
        codes[name] = (answer.status_code, answer.json()["code"])
    assert codes == {
        "tiers without a tier": (422, "invalid_requirement"),
        "tiers on a paid article": (422, "invalid_requirement"),
        "unknown tier": (422, "unknown_tier"),
    }
    listed = await client.get("/api/v1/admin/articles", headers=editor.headers)
    assert [a["title"] for a in listed.json()["items"]] == ["For supporters"]
    # Moving to `paid` drops the tiers; back to `tiers` needs them again.
    article = made.json()
    path = f"/api/v1/admin/articles/{article['id']}"
    moved = await client.patch(
        path, headers=editor.headers, json={"version": article["version"], "visibility": "paid"}
    )
    assert (moved.status_code, moved.json()["tiers"]) == (200, [])
    back = await client.patch(
        path,
        headers=editor.headers,
        json={"version": moved.json()["version"], "visibility": "tiers"},
    )
    assert (back.status_code, back.json()["code"]) == (422, "invalid_requirement")


async def test_each_reader_gets_the_answer_of_their_tiers(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    standard, supporter = (
        await factory.tier("standard"),
        await factory.tier("supporter", amount=900),
    )
    article = (await _create(client, editor, visibility="tiers", tiers=["supporter"])).json()
    await _publish(client, editor, article["id"])
    slug = article["slug"]
    readers = {
        "anonymous": None,
        "member": await factory.member(),
        "standard": await factory.subscriber(standard),
        "supporter": await factory.subscriber(supporter),
        "supporter, past due in grace": await factory.subscriber(supporter, status="past_due",
                                                                  past_due_days=1),
        "supporter, past due beyond grace": await factory.subscriber(
            supporter, status="past_due", past_due_days=30
        ),
        "supporter, canceled": await factory.subscriber(supporter, status="canceled"),
    }  # fmt: skip
    seen = {}
    for name, reader in readers.items():
        page = await _read(client, slug, reader)
        paywall = page["paywall"] or {}
        seen[name] = (
            page["access"]["reason"],
            page["access"]["notice"],
            "TIER-ONLY" in (page["content_html"] or ""),
            [t["slug"] for t in paywall.get("tiers", [])],
            paywall.get("checkout", {}).get("endpoint"),
        )
    checkout, portal = "/api/v1/billing/checkout", "/api/v1/billing/portal"
    assert seen == {
        "anonymous": ("tier_required", None, False, ["supporter"], checkout),
        "member": ("tier_required", None, False, ["supporter"], checkout),
        "standard": ("tier_required", None, False, ["supporter"], checkout),
        "supporter": ("entitled", None, True, [], None),
        "supporter, past due in grace": ("entitled", "payment_failed", True, [], None),
        "supporter, past due beyond grace": ("payment_failed", None, False, ["supporter"], portal),
        "supporter, canceled": ("subscription_lapsed", None, False, ["supporter"], checkout),
    }
    refused = await _read(client, slug, readers["standard"])
    assert refused["access"]["tiers"] == ["supporter"]
    # Only the plans of the tier that unlocks it are offered.
    assert {p["tier_id"] for p in refused["paywall"]["plans"]} == {supporter.id}
    assert refused["structured_data"]["isAccessibleForFree"] is False


async def test_a_paid_article_offers_every_tier_on_sale(
    client: AsyncClient, factory: Factory
) -> None:
    editor = await factory.member(role=Role.editor)
    standard, supporter = await factory.tier("standard"), await factory.tier("supporter")
    article = (await _create(client, editor, visibility="paid")).json()
    await _publish(client, editor, article["id"])
    page = await _read(client, article["slug"], await factory.member())
    assert page["access"]["reason"] == "subscription_required"
    assert {t["slug"] for t in page["paywall"]["tiers"]} >= {"standard", "supporter"}
    assert {standard.id, supporter.id} <= {p["tier_id"] for p in page["paywall"]["plans"]}
    assert (await _read(client, article["slug"], await factory.subscriber(standard)))["access"][
        "granted"
    ]


async def test_time_rules_open_and_close_an_article(client: AsyncClient, factory: Factory) -> None:
    editor = await factory.member(role=Role.editor)
    now, day, hour = utcnow(), timedelta(days=1), timedelta(hours=1)
    cases: dict[str, tuple[dict[str, Any], Any]] = {
        "embargoed until tomorrow": ({"visibility": "paid", "free_after": now + day}, None),
        "embargo over": ({"visibility": "paid", "free_after": now - hour}, None),
        "auto-paywall, young": ({"gated_after_days": 3}, now - day),
        "auto-paywall, old": ({"gated_after_days": 3}, now - 10 * day),
        "breaking, still free": ({"visibility": "paid", "free_until": now + day}, None),
        "breaking, over": ({"visibility": "paid", "free_until": now - hour}, None),
    }
    seen = {}
    for name, (fields, published_at) in cases.items():
        body = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in fields.items()}
        article = (await _create(client, editor, **body)).json()
        publish = {"published_at": published_at.isoformat()} if published_at else {}
        await _publish(client, editor, article["id"], **publish)
        page = await _read(client, article["slug"])
        seen[name] = (
            page["access"]["required"],
            page["access"]["granted"],
            page["structured_data"]["isAccessibleForFree"],
            "TIER-ONLY" in (page["content_html"] or ""),
        )
    assert seen == {
        "embargoed until tomorrow": ("paid", False, False, False),
        "embargo over": ("public", True, True, True),
        "auto-paywall, young": ("public", True, True, True),
        "auto-paywall, old": ("paid", False, False, False),
        "breaking, still free": ("public", True, True, True),
        "breaking, over": ("paid", False, False, False),
    }


async def test_a_cached_answer_does_not_outlive_the_rule_time(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """An embargo ends with no write at all: the freshness check sees its time pass and
    clears the answers cached before it."""
    editor = await factory.member(role=Role.editor)
    soon = utcnow() + timedelta(seconds=1)
    article = await articles.make(editor, body=BODY, visibility="paid", free_after=soon)
    freshness = CacheFreshness(app.state.db.reads, app.state.response_cache, NEXT_CHANGE_SQL)
    assert await freshness.check() is False
    before = await _read(client, article.slug)
    assert before["access"]["granted"] is False
    assert (await _read(client, article.slug)) == before  # cached
    while utcnow() <= soon:
        await asyncio.sleep(0.05)
    assert await freshness.check() is True
    after = await _read(client, article.slug)
    assert (after["access"]["required"], after["access"]["granted"]) == ("public", True)
    assert "TIER-ONLY" in after["content_html"]


async def test_the_publications_automatic_paywall_applies_to_pages_already_stored(
    app: FastAPI, client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    """Turning on BROADSHEET_AUTO_PAYWALL_DAYS makes every stored page stale: a process that
    starts renders them again, and the search index follows for those that changed."""
    editor = await factory.member(role=Role.editor)
    word = "shipwrightlore"
    old = await articles.make(
        editor, body=f"Only paragraph, about {word}.", published_at=utcnow() - timedelta(days=9)
    )
    young = await articles.make(editor, body=f"Fresh paragraph, about {word}.")
    opted_out = await articles.make(
        editor, body=f"Kept open, about {word}.", auto_paywall=False,
        published_at=utcnow() - timedelta(days=9),
    )  # fmt: skip
    assert (await _read(client, old.slug))["excerpt"] == f"Only paragraph, about {word}."

    async def found() -> set[str]:
        answer = await client.get(f"/api/v1/search?q={word}")
        return {hit["article"]["slug"] for hit in answer.json()["items"]}

    assert await found() == {old.slug, young.slug, opted_out.slug}
    await derived.refresh_stale(app.state.db, Publication(app.state.settings.public_url, 7))
    page = await _read(client, old.slug)
    assert (page["access"]["required"], page["access"]["granted"]) == ("paid", False)
    # A gated article's teaser comes from its free part only (empty for a one-paragraph one).
    assert page["excerpt"] == "" and word not in str(page)
    assert page["gated_after"] is not None
    assert (await _read(client, young.slug))["access"]["required"] == "public"
    assert (await _read(client, opted_out.slug))["access"]["required"] == "public"
    # Bodies that a rule will gate are indexed as paid from now on (the young one's too,
    # though it is public for a week yet): anonymous readers no longer match them.
    assert await found() == {opted_out.slug}


async def test_a_comp_opens_its_tier_only_and_one_without_a_tier_opens_every_tier(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    await factory.tier("supporter")
    await factory.tier("print")
    slugs = {}
    for tier in ("supporter", "print"):
        article = (await _create(client, admin, visibility="tiers", tiers=[tier])).json()
        await _publish(client, admin, article["id"])
        slugs[tier] = article["slug"]
    one, every = await factory.member(), await factory.member()
    for member, body in ((one, {"tier": "supporter"}), (every, {})):
        given = await client.post(
            f"/api/v1/admin/members/{member.id}/comp", headers=admin.headers, json=body
        )
        assert given.status_code in (200, 201), given.text
    seen = {
        (name, tier): (await _read(client, slug, member))["access"]["reason"]
        for name, member in (("one", one), ("every", every))
        for tier, slug in slugs.items()
    }
    assert seen == {
        ("one", "supporter"): "entitled",
        ("one", "print"): "tier_required",
        ("every", "supporter"): "entitled",
        ("every", "print"): "entitled",
    }
