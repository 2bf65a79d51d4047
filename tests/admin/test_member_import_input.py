"""Member import on malformed input: a clear 4xx or a per-row report, never a 500."""

from __future__ import annotations

import pytest
from httpx import AsyncClient

from app.accounts.models import Role
from tests.admin.csvkit import post_csv
from tests.factories import Factory, Member


@pytest.fixture
async def admin(factory: Factory) -> Member:
    return await factory.member(role=Role.admin)


async def _emails(client: AsyncClient, admin: Member) -> set[str]:
    page = await client.get("/api/v1/admin/members?limit=100", headers=admin.headers)
    return {m["email"] for m in page.json()["items"]} - {admin.user.email}


async def test_a_cell_over_128_kib_is_a_row_error(client: AsyncClient, admin: Member) -> None:
    body = b'email,name\nbig@example.org,"' + b"x" * 200_000 + b'"\nok@example.org,Fine\n'
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert [(e["row"], e["email"]) for e in report["errors"]] == [(2, "big@example.org")]
    assert "longer than" in report["errors"][0]["reason"]
    assert await _emails(client, admin) == {"ok@example.org"}


async def test_cr_only_line_endings_import(client: AsyncClient, admin: Member) -> None:
    response = await post_csv(
        client, admin.headers, b"email,name\rcr@example.org,x\rcr2@example.org,y\r"
    )
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 2 and response.json()["errors"] == []
    assert await _emails(client, admin) == {"cr@example.org", "cr2@example.org"}


async def test_malformed_quoting_is_reported_with_its_row_number(
    client: AsyncClient, admin: Member
) -> None:
    body = (
        "email,name\n"
        "first@example.org,One\n"
        'broken@example.org,"Half" quoted\n'
        "last@example.org,Three\n"
        'open@example.org,"never closed\n'
        "swallowed@example.org,Five\n"
    )
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 200, response.text
    errors = response.json()["errors"]
    assert [e["row"] for e in errors] == [3, 5]
    assert all("malformed" in e["reason"] for e in errors)
    assert await _emails(client, admin) == {"first@example.org", "last@example.org"}


@pytest.mark.parametrize("body", [b"", b"\n\n", b"\xef\xbb\xbf"])
async def test_an_empty_body_is_refused(client: AsyncClient, admin: Member, body: bytes) -> None:
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 422
    assert response.json()["code"] == "csv_empty"


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", "csv_not_utf8"),
        (b'{"members": [{"email": "json@example.org"}]}', "csv_no_email_column"),
        (b"name,labels\nAda,vip\n", "csv_no_email_column"),
    ],
)
async def test_a_file_that_is_not_a_member_csv_is_refused(
    client: AsyncClient, admin: Member, body: bytes, code: str
) -> None:
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code


async def test_duplicated_header_names_are_refused(client: AsyncClient, admin: Member) -> None:
    body = "email,name,Email\na@example.org,A,b@example.org\n"
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 422
    assert response.json()["code"] == "csv_duplicate_column"
    assert "email" in response.json()["detail"]
    assert await _emails(client, admin) == set()


async def test_a_header_only_file_imports_nothing(client: AsyncClient, admin: Member) -> None:
    response = await post_csv(client, admin.headers, "email,name,labels\r\n")
    assert response.status_code == 200
    report = response.json()
    assert (report["rows"], report["created"], report["errors"]) == (0, 0, [])


async def test_a_byte_order_mark_is_not_part_of_the_first_column(
    client: AsyncClient, admin: Member
) -> None:
    body = "\ufeffemail,name\r\nbom@example.org,Bom\r\n".encode()
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 200 and response.json()["created"] == 1


async def test_row_numbers_are_spreadsheet_rows(client: AsyncClient, admin: Member) -> None:
    body = (
        "email,name,labels\n"
        "\n"
        ",,\n"
        'multi@example.org,"Two\nlines",a\n'
        "too-many@example.org,X,a,extra\n"
        "trailing@example.org,Y,a,,\n"
        "bad-address,Z,\n"
    )
    report = (await post_csv(client, admin.headers, body)).json()
    assert [(e["row"], e["email"]) for e in report["errors"]] == [
        (5, "too-many@example.org"),
        (7, "bad-address"),
    ]
    assert "4 cells" in report["errors"][0]["reason"]
    assert (report["rows"], report["created"]) == (4, 2)
    assert await _emails(client, admin) == {"multi@example.org", "trailing@example.org"}


async def test_a_customer_id_longer_than_its_column_is_a_row_error(
    client: AsyncClient, admin: Member
) -> None:
    body = f"email,stripe_customer_id\nlong@example.org,cus_{'x' * 300}\nok@example.org,cus_Ok1\n"
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 200, response.text
    assert [e["row"] for e in response.json()["errors"]] == [2]
    assert await _emails(client, admin) == {"ok@example.org"}
