"""Members, roles, audit log, and CSV export and import."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role, User
from tests.factories import ArticleFactory, Factory


async def test_member_search_filters_and_labels(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    ada = await factory.member(email="ada@example.com", name="Ada Lovelace")
    await factory.member(email="bob@example.com", name="Bob")
    found = (await client.get("/api/v1/admin/members?q=lovelace", headers=admin.headers)).json()
    assert [m["email"] for m in found["items"]] == ["ada@example.com"]
    labelled = await client.patch(
        f"/api/v1/admin/members/{ada.id}", json={"labels": ["vip", "press"]}, headers=admin.headers
    )
    assert labelled.status_code == 200 and labelled.json()["labels"] == ["press", "vip"]
    by_label = (await client.get("/api/v1/admin/members?label=vip", headers=admin.headers)).json()
    assert [m["id"] for m in by_label["items"]] == [ada.id]
    await client.post(f"/api/v1/admin/members/{ada.id}/comp", json={}, headers=admin.headers)
    comped = (await client.get("/api/v1/admin/members?comped=true", headers=admin.headers)).json()
    assert [m["id"] for m in comped["items"]] == [ada.id]
    paid = (
        await client.get("/api/v1/admin/members?access=paid&role=reader", headers=admin.headers)
    ).json()
    assert [m["id"] for m in paid["items"]] == [ada.id]
    detail = (await client.get(f"/api/v1/admin/members/{ada.id}", headers=admin.headers)).json()
    assert detail["access_level"] == "paid" and detail["comment_count"] == 0


async def test_roles_admin_only_and_last_admin_protected(
    client: AsyncClient, factory: Factory
) -> None:
    admin = await factory.member(role=Role.admin)
    reader = await factory.member()
    promoted = await client.patch(
        f"/api/v1/admin/members/{reader.id}", json={"role": "editor"}, headers=admin.headers
    )
    assert promoted.json()["role"] == "editor"
    self_demote = await client.patch(
        f"/api/v1/admin/members/{admin.id}", json={"role": "reader"}, headers=admin.headers
    )
    assert self_demote.status_code == 409 and self_demote.json()["code"] == "last_admin"
    disable_last = await client.patch(
        f"/api/v1/admin/members/{admin.id}", json={"disabled": True}, headers=admin.headers
    )
    assert disable_last.status_code == 409


async def test_disabling_revokes_sessions(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    reader = await factory.member()
    await client.patch(
        f"/api/v1/admin/members/{reader.id}", json={"disabled": True}, headers=admin.headers
    )
    assert (await client.get("/api/v1/me", headers=reader.headers)).status_code == 401
    assert (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": reader.refresh_token})
    ).status_code == 401
    login = await client.post(
        "/api/v1/auth/login", json={"email": reader.user.email, "password": reader.password}
    )
    assert login.status_code == 403
    await client.patch(
        f"/api/v1/admin/members/{reader.id}", json={"disabled": False}, headers=admin.headers
    )
    login = await client.post(
        "/api/v1/auth/login", json={"email": reader.user.email, "password": reader.password}
    )
    assert login.status_code == 200


async def test_audit_log_records_staff_writes_with_before_and_after(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    admin = await factory.member(role=Role.admin)
    editor = await factory.member(role=Role.editor)
    created = (
        await client.post(
            "/api/v1/admin/articles", json={"title": "Audit me"}, headers=editor.headers
        )
    ).json()
    await client.patch(
        f"/api/v1/admin/articles/{created['id']}",
        json={"title": "Audited", "version": 1},
        headers=editor.headers,
    )
    await client.post(f"/api/v1/admin/articles/{created['id']}/publish", headers=editor.headers)
    reader = await factory.member()
    await client.patch(
        f"/api/v1/admin/members/{reader.id}", json={"role": "author"}, headers=admin.headers
    )
    log = (await client.get("/api/v1/admin/audit?entity=article", headers=admin.headers)).json()[
        "items"
    ]
    actions = [(e["action"], e["actor_id"]) for e in reversed(log)]
    assert actions[0] == ("create", editor.id)
    title_change = next(e for e in log if e["after"] and e["after"].get("title") == "Audited")
    assert title_change["before"]["title"] == "Audit me"
    publish = next(e for e in log if e["after"] and e["after"].get("status") == "published")
    assert publish["before"]["status"] == "draft"
    roles = (
        await client.get(
            f"/api/v1/admin/audit?entity=user&entity_id={reader.id}", headers=admin.headers
        )
    ).json()["items"]
    assert roles[0]["before"] == {"role": "reader"} and roles[0]["after"] == {"role": "author"}
    # Append-only: no route changes or deletes entries.
    for method in ("PATCH", "DELETE", "PUT", "POST"):
        assert (
            await client.request(
                method, f"/api/v1/admin/audit/{log[0]['id']}", headers=admin.headers
            )
        ).status_code in (404, 405)
    # Reader actions are not staff writes.
    await client.patch("/api/v1/me", json={"display_name": "Quiet"}, headers=reader.headers)
    users = (await client.get("/api/v1/admin/audit?entity=user", headers=admin.headers)).json()[
        "items"
    ]
    assert all(e["after"].get("display_name") != "Quiet" for e in users if e["after"])


def _csv(rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(
        out,
        fieldnames=[
            "email",
            "name",
            "note",
            "subscribed_to_emails",
            "labels",
            "created_at",
            "complimentary_plan",
            "stripe_customer_id",
        ],
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


async def test_import_ten_thousand_rows_with_fifty_bad_then_reimport_changes_nothing(
    client: AsyncClient, factory: Factory, app: FastAPI
) -> None:
    admin = await factory.member(role=Role.admin)
    rows = []
    bad_rows = set()
    for i in range(10_000):
        row = {
            "email": f"imported{i}@example.com",
            "name": f"Reader {i}",
            "note": "",
            "subscribed_to_emails": "true" if i % 2 else "false",
            "labels": "imported,2025",
            "created_at": "2025-03-01T10:00:00Z",
            "complimentary_plan": "",
            "stripe_customer_id": "",
        }
        if i % 200 == 7:
            row["email"] = f"not-an-email-{i}"
            bad_rows.add(i + 2)
        rows.append(row)
    text = _csv(rows)
    dry = await client.post(
        "/api/v1/admin/members/import?dry_run=true",
        content=text,
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert dry.status_code == 200, dry.text
    assert dry.json()["created"] == 9950 and len(dry.json()["errors"]) == 50
    total = (await client.get("/api/v1/admin/members?limit=1", headers=admin.headers)).json()
    assert len(total["items"]) == 1  # only the admin: the dry run wrote nothing
    first = await client.post(
        "/api/v1/admin/members/import",
        content=text,
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    report = first.json()
    assert report["created"] == 9950
    assert {e["row"] for e in report["errors"]} == bad_rows
    assert all("not a valid email" in e["reason"] for e in report["errors"])
    again = (
        await client.post(
            "/api/v1/admin/members/import",
            content=text,
            headers={**admin.headers, "Content-Type": "text/csv"},
        )
    ).json()
    assert again["created"] == 0 and again["updated"] == 0 and again["unchanged"] == 9950
    page = (
        await client.get("/api/v1/admin/members?label=imported&limit=100", headers=admin.headers)
    ).json()
    assert len(page["items"]) == 100
    audit = (await client.get("/api/v1/admin/audit?action=import", headers=admin.headers)).json()[
        "items"
    ]
    assert len(audit) == 2


async def test_export_streams_ghost_compatible_csv(client: AsyncClient, factory: Factory) -> None:
    admin = await factory.member(role=Role.admin)
    member = await factory.member(email="csv@example.com", name="Comma, Name")
    await client.patch(
        f"/api/v1/admin/members/{member.id}", json={"labels": ["a", "b"]}, headers=admin.headers
    )
    response = await client.get("/api/v1/admin/members/export.csv", headers=admin.headers)
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    row = next(r for r in rows if r["email"] == "csv@example.com")
    assert row["name"] == "Comma, Name" and row["labels"] == "a,b"
    assert set(rows[0]) >= {
        "email",
        "name",
        "subscribed_to_emails",
        "labels",
        "created_at",
        "complimentary_plan",
        "stripe_customer_id",
    }


@pytest.mark.parametrize("change", [{"role": "reader"}, {"disabled": True}])
async def test_two_admins_demoting_each_other_at_once_leave_one_admin(
    client: AsyncClient, factory: Factory, change: dict[str, object]
) -> None:
    """Security review L15: count-then-update let both succeed on PostgreSQL."""
    first = await factory.member(role=Role.admin)
    second = await factory.member(role=Role.admin)
    answers = await asyncio.gather(
        client.patch(f"/api/v1/admin/members/{second.id}", json=change, headers=first.headers),
        client.patch(f"/api/v1/admin/members/{first.id}", json=change, headers=second.headers),
    )
    # The loser is refused as the last admin, or, if the winner committed first, as no
    # longer an admin (403) or no longer signed in (401, disabled).
    codes = sorted(a.status_code for a in answers)
    assert codes[0] == 200 and codes[1] in (401, 403, 409), codes
    roles = []
    for member in (first, second):
        async with factory.db.session(write=False) as session:
            user = await session.get(User, member.id)
            assert user is not None
            roles.append(user.role == Role.admin.value and not user.disabled)
    assert roles.count(True) == 1
