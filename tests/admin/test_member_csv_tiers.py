"""Tiers in the member CSV: the export's `tiers` column, and the import's `tier`/`tiers`
column giving comps of those tiers (unknown or archived tiers are row errors)."""

from __future__ import annotations

import csv
import io

from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from tests.admin.csvkit import comp_tiers, post_csv
from tests.admin.tierkit import make_tier_table
from tests.factories import Factory


async def test_the_export_lists_each_members_tiers_and_reads_back_unchanged(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    table = await make_tier_table(app)
    exported = await client.get("/api/v1/admin/members/export.csv", headers=admin.headers)
    assert exported.status_code == 200
    rows = {r["email"]: r for r in csv.DictReader(io.StringIO(exported.text))}
    for name, tiers in table.expected.items():
        assert rows[f"{name.replace('_', '-')}@tiers.example"]["tiers"] == ",".join(tiers), name
    assert rows["two@tiers.example"]["complimentary_plan"] == "true"
    before = await comp_tiers(app)
    # Read back, nobody gets a comp: each tier listed is held already, by a comp or paid for.
    again = (await post_csv(client, admin.headers, exported.text)).json()
    assert (again["errors"], again["created"], again["updated"], again["comped"]) == ([], 0, 0, 0)
    assert await comp_tiers(app) == before


async def test_a_hand_made_list_of_tiers_gives_comps_and_bad_tiers_are_row_errors(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    await make_tier_table(app)
    body = (
        "email,tier\n"
        "a@list.example,supporter\n"
        "b@list.example,Standard;supporter\n"
        "c@list.example,no-such-tier\n"
        "d@list.example,old\n"
        "e@list.example,\n"
    )
    report = (await post_csv(client, admin.headers, body)).json()
    assert [(e["row"], e["reason"]) for e in report["errors"]] == [
        (4, "no tier is called 'no-such-tier'"),
        (5, "the tier 'old' is archived"),
    ]
    assert (report["created"], report["comped"]) == (3, 3)
    granted = await comp_tiers(app)
    assert granted["a@list.example"] == ["supporter"]
    assert granted["b@list.example"] == ["standard", "supporter"]
    assert "e@list.example" not in granted
    again = (await post_csv(client, admin.headers, body)).json()
    assert (again["created"], again["comped"], len(again["errors"])) == (0, 0, 2)


async def test_with_a_complimentary_plan_column_only_comped_rows_get_their_tiers(
    client: AsyncClient, app: FastAPI, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    await make_tier_table(app)
    body = (
        "email,complimentary_plan,tiers\n"
        "f@ghost.example,true,\n"
        # Paying at the source: the tier came with a subscription, so it is not read at all.
        "g@ghost.example,false,no-such-tier\n"
        'h@ghost.example,true,"standard,supporter"\n'
        # Already pays for standard here: only supporter is given.
        "active@tiers.example,true,standard;supporter\n"
    )
    report = (await post_csv(client, admin.headers, body)).json()
    assert report["errors"] == []
    assert (report["created"], report["updated"], report["comped"]) == (3, 1, 4)
    granted = await comp_tiers(app)
    assert granted["f@ghost.example"] == [None]
    assert "g@ghost.example" not in granted
    assert granted["h@ghost.example"] == ["standard", "supporter"]
    assert granted["active@tiers.example"] == ["supporter"]
