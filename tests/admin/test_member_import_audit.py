"""What an import changes on existing members is in the audit log, row by row."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

from app.accounts.models import Role
from tests.admin.csvkit import post_csv
from tests.factories import Factory, Member


async def _log(client: AsyncClient, admin: Member, query: str) -> list[dict[str, Any]]:
    page = await client.get(f"/api/v1/admin/audit?limit=100&{query}", headers=admin.headers)
    assert page.status_code == 200, page.text
    items: list[dict[str, Any]] = page.json()["items"]
    return items


async def test_comp_customer_and_labels_on_an_existing_member_are_audited(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    reader = await factory.member()
    body = (
        "email,complimentary_plan,stripe_customer_id,labels\n"
        f'{reader.user.email},true,cus_attacker,"press,vip"\n'
        'newcomer@example.org,true,cus_newcomer,"press,vip"\n'
    )
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 200, response.text
    assert (response.json()["created"], response.json()["updated"]) == (1, 1)
    request_id = response.headers["x-request-id"]

    comps = await _log(client, admin, "entity=comp_grant")
    assert len(comps) == 1
    assert comps[0]["action"] == "create" and comps[0]["actor_id"] == admin.id
    assert comps[0]["request_id"] == request_id
    assert comps[0]["after"]["user_id"] == reader.id
    assert comps[0]["after"]["granted_by_id"] == admin.id
    assert comps[0]["entity_id"] == str(comps[0]["after"]["id"])

    customers = await _log(client, admin, "entity=billing_customer")
    assert [(e["entity_id"], e["after"]["customer_id"]) for e in customers] == [
        (str(reader.id), "cus_attacker")
    ]
    assert customers[0]["actor_id"] == admin.id and customers[0]["request_id"] == request_id

    labels = await _log(client, admin, "entity=member_label")
    assert sorted(e["entity_id"] for e in labels) == [f"{reader.id},press", f"{reader.id},vip"]
    assert {(e["actor_id"], e["request_id"]) for e in labels} == {(admin.id, request_id)}

    summary = await _log(client, admin, "action=import")
    assert len(summary) == 1 and summary[0]["actor_id"] == admin.id
    assert summary[0]["after"]["created"] == 1 and summary[0]["after"]["updated"] == 1

    # Nothing changes the second time, so nothing more is logged but the import itself.
    await post_csv(client, admin.headers, body)
    assert len(await _log(client, admin, "entity=comp_grant")) == 1
    assert len(await _log(client, admin, "entity=member_label")) == 2
    assert len(await _log(client, admin, "action=import")) == 2


async def test_a_customer_id_of_another_member_is_a_row_error(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    first = await factory.member()
    second = await factory.member()
    await post_csv(client, admin.headers, f"email,stripe_customer_id\n{first.user.email},cus_one\n")
    body = (
        "email,stripe_customer_id,labels\n"
        f"{second.user.email},cus_one,stolen\n"
        f"{first.user.email},cus_other,changed\n"
    )
    report = (await post_csv(client, admin.headers, body)).json()
    assert [e["row"] for e in report["errors"]] == [2, 3]
    assert report["updated"] == 0
    customers = await _log(client, admin, "entity=billing_customer")
    assert [e["after"]["customer_id"] for e in customers] == ["cus_one"]
    assert await _log(client, admin, "entity=member_label") == []


async def test_a_long_label_is_audited_whole(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    reader = await factory.member()
    label = "l" * 100
    response = await post_csv(client, admin.headers, f"email,labels\n{reader.user.email},{label}\n")
    assert response.status_code == 200, response.text
    assert response.json()["updated"] == 1
    entries = await _log(client, admin, "entity=member_label")
    assert [e["after"]["label"] for e in entries] == [label]
    assert entries[0]["entity_id"] == f"{reader.id},{label}"[:64]
