"""Tiers in the staff console: comps of one tier or every tier, the member filter by tier,
and the tiers each member answer lists, which must agree with each other."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from app.billing.models import Tier
from tests.admin.tierkit import ALL, ensure_default_tier, make_tier_table
from tests.factories import Factory

MEMBERS = "/api/v1/admin/members"


async def _ids(client: AsyncClient, headers: dict[str, str], query: str) -> set[int]:
    answer = await client.get(f"{MEMBERS}?role=reader&limit=100&{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    return {m["id"] for m in answer.json()["items"]}


async def test_tier_filter_and_listed_tiers_agree_on_a_table_of_members(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    table = await make_tier_table(app)
    name_of = {uid: name for name, uid in table.members.items()}
    page = await client.get(f"{MEMBERS}?role=reader&limit=100", headers=admin.headers)
    listed = {name_of[m["id"]]: m["tiers"] for m in page.json()["items"]}
    assert listed == table.expected
    for slug in ALL:
        filtered = {name_of[i] for i in await _ids(client, admin.headers, f"tier={slug}")}
        assert filtered == {name for name, tiers in listed.items() if slug in tiers}, slug
    free = {name_of[i] for i in await _ids(client, admin.headers, "tier=free")}
    assert free == {name for name, tiers in listed.items() if not tiers}
    # The tier rule repeats paid_condition's: a member has some tier exactly when the member
    # has paid access, except through a subscription whose plan is gone (in no tier).
    paid = {name_of[i] for i in await _ids(client, admin.headers, "access=paid")}
    assert paid == {name for name, tiers in listed.items() if tiers} | {"planless"}


async def test_a_member_answer_shows_each_running_comp_with_its_tier(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    table = await make_tier_table(app)

    async def detail(name: str) -> dict[str, Any]:
        found = await client.get(f"{MEMBERS}/{table.members[name]}", headers=admin.headers)
        assert found.status_code == 200, found.text
        return found.json()  # type: ignore[no-any-return]

    two = await detail("two")
    assert two["tiers"] == ["standard", "supporter"]
    assert [(c["tier"], c["reason"]) for c in two["comps"]] == [("supporter", "friend")]
    everything = await detail("comp_all")
    assert [(c["tier"], c["ends_at"]) for c in everything["comps"]] == [(None, None)]
    assert everything["tiers"] == ALL
    # Expired, revoked and not yet started comps are not running.
    for name in ("comp_expired", "comp_revoked", "comp_later"):
        assert (await detail(name))["comps"] == [], name


async def test_an_unknown_tier_filter_is_422(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    answer = await client.get(f"{MEMBERS}?tier=no-such-tier", headers=admin.headers)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["code"] == "unknown_tier"


async def test_a_comp_names_one_tier_or_gives_every_tier(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    reader = await factory.member()
    async with app.state.db.session() as session:
        await ensure_default_tier(session)
        session.add_all(
            [
                Tier(name="Supporter", slug="supporter", sort_order=2),
                Tier(name="Old", slug="old", sort_order=9, active=False),
            ]
        )
    url = f"{MEMBERS}/{reader.id}/comp"
    one = await client.post(url, json={"tier": "supporter"}, headers=admin.headers)
    assert one.status_code == 201, one.text
    assert one.json()["tier"] == "supporter"
    listed = (await client.get(f"{MEMBERS}/{reader.id}", headers=admin.headers)).json()
    assert listed["tiers"] == ["supporter"]
    assert [c["tier"] for c in listed["comps"]] == ["supporter"]
    every = await client.post(url, json={"reason": "press"}, headers=admin.headers)
    assert every.status_code == 201 and every.json()["tier"] is None
    listed = (await client.get(f"{MEMBERS}/{reader.id}", headers=admin.headers)).json()
    assert listed["tiers"] == ["paid", "supporter", "old"]
    assert [c["tier"] for c in listed["comps"]] == ["supporter", None]
    for body, status, code in [
        ({"tier": "no-such-tier"}, 422, "unknown_tier"),
        ({"tier": "free"}, 422, "unknown_tier"),
        ({"tier": "old"}, 409, "tier_archived"),
    ]:
        refused = await client.post(url, json=body, headers=admin.headers)
        assert (refused.status_code, refused.json()["code"]) == (status, code), body
        assert refused.headers["content-type"] == "application/problem+json"
    after = (await client.get(f"{MEMBERS}/{reader.id}", headers=admin.headers)).json()
    assert len(after["comps"]) == 2
