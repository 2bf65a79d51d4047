"""The member import reads its upload as a stream: spooled as it arrives, parsed a row at a
time, with the whole-file refusals (not UTF-8, too large) kept."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator, Iterator

import pytest
from httpx import AsyncClient

from app.accounts.models import Role
from app.admin import member_import
from app.admin.csvio import MemberRow
from app.admin.members_router import MAX_IMPORT_BYTES
from tests.admin.csvkit import IMPORT, post_csv
from tests.factories import Factory, Member


@pytest.fixture
async def admin(factory: Factory) -> Member:
    return await factory.member(role=Role.admin)


async def _emails(client: AsyncClient, admin: Member) -> set[str]:
    page = await client.get("/api/v1/admin/members?limit=100", headers=admin.headers)
    return {m["email"] for m in page.json()["items"]} - {admin.user.email}


async def test_the_upload_is_never_held_whole_in_memory(client: AsyncClient, admin: Member) -> None:
    # 8 MB of blank rows (skipped without a query) around one member: what the import itself
    # allocates is the file's pieces and one row at a time, not the file, nor its text.
    blank = b"," * 199 + b"\n"
    body = b"email,name\n" + blank * 20_000 + b"streamed@example.org,S\n" + blank * 20_000
    # A first import warms what any first request builds once (compiled statements, caches).
    assert (await post_csv(client, admin.headers, b"email\nwarm@example.org\n")).is_success
    tracemalloc.start()
    try:
        response = await post_csv(client, admin.headers, body)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert response.json()["created"] == 1
    assert peak < len(body) / 2, f"{peak:,} bytes traced for a {len(body):,}-byte upload"


async def test_a_bad_byte_late_in_a_large_file_refuses_all_of_it(
    client: AsyncClient, admin: Member
) -> None:
    rows = b"".join(b"late%d@example.org,Reader %d\n" % (i, i) for i in range(70_000))
    body = b"email,name\n" + rows + b"bad@example.org,\xff\n"
    assert len(body) > 2 * 1024 * 1024
    response = await post_csv(client, admin.headers, body)
    assert response.status_code == 422
    assert response.json()["code"] == "csv_not_utf8"
    assert await _emails(client, admin) == set()


async def test_a_streamed_body_over_the_limit_is_413_and_imports_nothing(
    client: AsyncClient, admin: Member
) -> None:
    row = b"over@example.org,x\n"

    async def chunks() -> AsyncIterator[bytes]:
        yield b"email,name\n"
        for _ in range(MAX_IMPORT_BYTES // (64 * 1024) + 2):
            yield row * (64 * 1024 // len(row) + 1)

    response = await client.post(
        IMPORT, content=chunks(), headers={**admin.headers, "Content-Type": "text/csv"}
    )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert await _emails(client, admin) == set()


async def test_other_requests_run_between_parsed_slices() -> None:
    # Parsing a whole chunk at once held every reader of the process for tens of milliseconds
    # (an address check is ~0.1 ms): the import gives the event loop a turn after each slice.
    seen: list[str] = []

    def slices() -> Iterator[list[MemberRow]]:
        for n in range(4):
            seen.append(f"slice {n}")
            yield []

    async def reader() -> None:
        for _ in range(8):
            seen.append("reader")
            await asyncio.sleep(0)

    other = asyncio.create_task(reader())
    chunks = [chunk async for chunk in member_import.paced_chunks(slices())]
    await other
    assert chunks == []
    # A reader's turn between every two slices, never two slices back to back.
    pairs = list(zip(seen, seen[1:], strict=False))
    assert all(not (a.startswith("slice") and b.startswith("slice")) for a, b in pairs)
