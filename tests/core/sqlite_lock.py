"""A writer of another process holding SQLite's write lock, for the tests of our writers."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Coroutine
from typing import Any


async def assert_waits_out_a_held_lock(path: str, write: Coroutine[Any, Any, Any]) -> None:
    """Run `write` while another connection holds the lock: it must wait without stalling the
    event loop, then finish once the lock is released."""
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        pending = asyncio.create_task(write)
        # Were the wait SQLite's busy handler, it would run on the loop and these sleeps
        # would only return once the write had failed or finished.
        for _ in range(10):
            await asyncio.sleep(0.01)
            assert not pending.done()
        other.execute("COMMIT")
        await asyncio.wait_for(pending, 5)
    finally:
        other.close()
