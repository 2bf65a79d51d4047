"""Point reads by key that PostgreSQL answers for many callers in one statement.

A page read alone costs PostgreSQL about 140 µs of CPU, most of it per statement rather than
per row (parse, bind, plan lookup, executor start, the round trip); read sixteen at a time
it costs about 80 (`python -m bench.batch_probe`). On the long tail of an archive the pages
that miss the response cache arrive faster than the database answers, so a key asked for
while the database is busy with earlier batches waits for the next, and the keys that waited
together go in one `= ANY(:key)` statement. A key asked for while the database is not busy
goes at once: gathering the keys of a whole event-loop turn first lengthened the mixed
page views' p99 by a third (bench.ab m). SQLite reads run on the event loop itself and have
nothing to gather: each runs alone.
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
    """One `Gathered` read's callers, in batches of up to `most` keys, at most `in_flight`
    on their way at a time: a key goes at once while there is room, and the keys asked for
    while there is none wait for the next.

    One caller's cancellation never reaches the statement the others wait on, and a
    statement's failure reaches every caller of its batch.
    """

    def __init__(self, read: Gathered, fetch: Fetch, in_flight: int, most: int) -> None:
        self.read, self._fetch, self._in_flight, self._most = read, fetch, in_flight, most
        self._waiting: dict[Any, list[asyncio.Future[list[Row]]]] = {}
        self._params: Params = {}
        self._running = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def rows(self, params: Params) -> list[Row]:
        """The rows of `params[key]`, without their key column."""
        future: asyncio.Future[list[Row]] = asyncio.get_running_loop().create_future()
        if not self._waiting:
            self._params = params
        self._waiting.setdefault(params[self.read.key], []).append(future)
        self._send()
        return await future

    def _send(self) -> None:
        if not self._waiting or self._running >= self._in_flight:
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
        self._send()

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
            self._send()

    async def close(self) -> None:
        """Wait for the batches on their way (each is bounded by the command timeout)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _settle(waiting: dict[Any, list[asyncio.Future[list[Row]]]], exc: Exception) -> None:
    for futures in waiting.values():
        for future in futures:
            if not future.done():
                future.set_exception(exc)
