"""The in-process queue for SQLite writers: one at a time, in order, re-entrant per task."""

from __future__ import annotations

import asyncio

from app.core.db import _WriteGate


async def test_writers_of_different_tasks_take_turns_in_arrival_order() -> None:
    gate = _WriteGate()
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
    gate = _WriteGate()

    async def nested() -> str:
        async with gate.hold(), gate.hold():
            return "done"

    # Without re-entrancy this would wait on itself forever.
    assert await asyncio.wait_for(nested(), timeout=5) == "done"
