"""The in-process queue for SQLite writers: one at a time, in order, re-entrant per task."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from fastapi import FastAPI
from httpx import AsyncClient
from sqlmodel import select

from app.core.cache.version import ContentVersion
from app.core.config import Settings
from app.core.db import Database
from app.core.db.engines import WriteGate
from app.core.security import PasswordHasher
from tests.factories import Factory


async def test_writers_of_different_tasks_take_turns_in_arrival_order() -> None:
    gate = WriteGate()
    inside: list[str] = []
    order: list[str] = []

    async def writer(name: str) -> None:
        async with gate.hold():
            inside.append(name)
            assert inside == [name], inside  # nobody else is in at the same time
            await asyncio.sleep(0.01)
            order.append(name)
            inside.remove(name)

    await asyncio.gather(*(writer(n) for n in "abcde"))
    assert order == list("abcde")


async def test_a_task_already_inside_can_open_another_write_session() -> None:
    gate = WriteGate()

    async def nested() -> str:
        async with gate.hold(), gate.hold():
            return "done"

    # Without re-entrancy this would wait on itself forever.
    assert await asyncio.wait_for(nested(), timeout=5) == "done"


async def test_a_write_session_takes_its_turn_at_its_first_statement(app: FastAPI) -> None:
    """Opening a write session holds up no other writer: only its transaction does."""
    db: Database = app.state.db
    opened = asyncio.Event()
    done = asyncio.Event()

    async def idle_writer() -> None:
        async with db.session() as session:
            opened.set()
            await done.wait()
            await session.exec(select(ContentVersion))

    async def other_writer() -> None:
        await opened.wait()
        async with db.session() as session:
            session.add(ContentVersion(id=99, version=1))

    idle = asyncio.create_task(idle_writer())
    await asyncio.wait_for(other_writer(), timeout=10)
    done.set()
    await idle


class _HeldHasher(PasswordHasher):
    """The real hasher, held mid-verify until the test lets it go."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.verifying = asyncio.Event()
        self.release = asyncio.Event()

    async def verify(self, password: str, stored: str | None) -> tuple[bool, str | None]:
        self.verifying.set()
        await self.release.wait()
        return await super().verify(password, stored)


async def test_a_login_checking_its_password_holds_up_no_writer(
    app: FastAPI, client: AsyncClient, factory: Factory
) -> None:
    member = await factory.member()
    writer = await factory.member()
    hasher = _HeldHasher(app.state.settings)
    app.state.auth = replace(app.state.auth, hasher=hasher)
    login = asyncio.create_task(
        client.post(
            "/api/v1/auth/login", json={"email": member.user.email, "password": member.password}
        )
    )
    await asyncio.wait_for(hasher.verifying.wait(), timeout=10)
    # While argon2 runs for the login, another reader's write goes through.
    other = await asyncio.wait_for(
        client.put("/api/v1/me/comment-reply-emails?on=true", headers=writer.headers), timeout=10
    )
    assert other.status_code == 200
    hasher.release.set()
    assert (await login).status_code == 200
