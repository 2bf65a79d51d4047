"""Point reads by key that PostgreSQL answers for many callers in one statement.

A page read alone costs PostgreSQL about 140 µs of CPU, most of it per statement rather than
per row (parse, bind, plan lookup, executor start, the round trip); read sixteen at a time
it costs about 80 (`python -m bench.batch_probe`). On the long tail of an archive the pages
that miss the response cache arrive many to an event-loop turn, so the direct reads gather
the keys asked for in one turn, and those asked for while the database is busy with earlier
batches, into one `= ANY(:key)` statement. SQLite reads run on the event loop itself and
have nothing to gather: each runs alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from app.core.db.statements import Params, Query, Row

Fetch = Callable[[Query, Params], Awaitable[list[Row]]]


@dataclass(frozen=True, eq=False)
class Gathered:
    """A read by the parameter `key`: its SQLite form takes one value, its PostgreSQL form a
    list (`= ANY(:key)`), and its rows start with the key they answer. Its other parameters
    must not depend on the key: a batch runs with its first caller's."""

    query: Query
    key: str


class Gatherer:
    """One `Gathered` read's callers, in batches of up to `most` keys: a batch goes once
    the turn that asked for it ends, at most `in_flight` at a time; keys asked for meanwhile
    wait for the next.

    One caller's cancellation never reaches the statement the others wait on, and a
    statement's failure reaches every caller of its batch.
    """

    def __init__(self, read: Gathered, fetch: Fetch, in_flight: int, most: int) -> None:
        self.read, self._fetch, self._in_flight, self._most = read, fetch, in_flight, most
        self._waiting: dict[Any, list[asyncio.Future[list[Row]]]] = {}
        self._params: Params = {}
        self._running = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def rows(self, params: Params) -> list[Row]:
        """The rows of `params[key]`, without their key column."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[Row]] = loop.create_future()
        if not self._waiting:
            self._params = params
        self._waiting.setdefault(params[self.read.key], []).append(future)
        self._schedule(loop)
        return await future

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled and self._running < self._in_flight:
            self._scheduled = True
            loop.call_soon(self._send)

    def _send(self) -> None:
        self._scheduled = False
        if not self._waiting:
            return
        waiting, self._waiting = self._waiting, {}
        if len(waiting) > self._most:
            keys = list(waiting)
            self._waiting = {key: waiting.pop(key) for key in keys[self._most :]}
        params = {**self._params, self.read.key: list(waiting)}
        self._running += 1
        task = asyncio.get_running_loop().create_task(self._answer(params, waiting))
        self._tasks.add(task)  # the loop keeps only a weak reference to a task
        task.add_done_callback(self._tasks.discard)
        if self._waiting:
            self._schedule(asyncio.get_running_loop())

    async def _answer(
        self, params: Params, waiting: dict[Any, list[asyncio.Future[list[Row]]]]
    ) -> None:
        try:
            rows = await self._fetch(self.read.query, params)
        except asyncio.CancelledError:
            for futures in waiting.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:
            _settle(waiting, exc)
        else:
            found: dict[Any, list[Row]] = {}
            for row in rows:
                found.setdefault(row[0], []).append(row[1:])
            for key, futures in waiting.items():
                for future in futures:
                    if not future.done():
                        future.set_result(found.get(key, []))
        finally:
            self._running -= 1
            if self._waiting:
                self._schedule(asyncio.get_running_loop())

    async def close(self) -> None:
        """Wait for the batches on their way (each is bounded by the command timeout)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _settle(waiting: dict[Any, list[asyncio.Future[list[Row]]]], exc: Exception) -> None:
    for futures in waiting.values():
        for future in futures:
            if not future.done():
                future.set_exception(exc)
