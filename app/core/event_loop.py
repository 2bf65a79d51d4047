"""uvicorn's event loop: uvloop, with every waiting connection accepted at once when one
process serves alone.

libuv accepts one connection each time the listening socket is reported ready, and that
is once per turn of the loop. A saturated worker's turn runs every ready request (64
searches: ~80 ms), so of 64 connections opened together the last waited 64 turns, seconds,
before its first request was read (BENCHMARKS.md, issue 18). asyncio's own loop accepts up
to the backlog per turn; this loop does the same on uvloop. A socket handed in (`sock=`:
uvicorn's workers share one listening socket) keeps libuv's one accept per turn, which is
what spreads connections over the workers: a worker in a long turn takes one, a free one
takes the rest.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Iterable
from typing import Any

import uvloop

log = logging.getLogger("broadsheet.serving")

ACCEPT_BATCH = 128  # at most this many accepts per turn, as asyncio bounds it by the backlog
RETRY_SECONDS = 1.0  # out of file descriptors or memory: stop accepting for this long
_SHED = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


class PromptAcceptLoop(uvloop.Loop):
    """uvloop's loop whose own TCP servers accept every waiting connection each turn."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: str | None = None,
        port: int | None = None,
        *,
        sock: socket.socket | None = None,
        backlog: int = 100,
        ssl: Any = None,
        **kwargs: Any,
    ) -> asyncio.AbstractServer:
        if sock is not None or ssl is not None or kwargs:
            base: Any = super().create_server
            return await base(  # type: ignore[no-any-return]
                protocol_factory, host, port, sock=sock, backlog=backlog, ssl=ssl, **kwargs
            )
        server = PromptServer(self, protocol_factory, listening_sockets(host, port, backlog))
        server.start()
        return server


def new_event_loop() -> asyncio.AbstractEventLoop:
    """The loop uvicorn runs on (`loop="app.core.event_loop:new_event_loop"`)."""
    return PromptAcceptLoop()


def listening_sockets(host: str | None, port: int | None, backlog: int) -> list[socket.socket]:
    """Bound, listening, non-blocking sockets for each address `host` names (all if None)."""
    infos = socket.getaddrinfo(
        host or None, port or 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class PromptServer(asyncio.AbstractServer):
    """A TCP server that accepts up to ACCEPT_BATCH waiting connections each time its
    sockets are ready, and hands each to the loop as an accepted socket."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        sockets: Iterable[socket.socket],
    ) -> None:
        self._loop, self._factory = loop, protocol_factory
        self._sockets = list(sockets)
        self._opening: set[asyncio.Task[Any]] = set()
        self._closed = asyncio.Event()

    @property
    def sockets(self) -> tuple[socket.socket, ...]:
        return tuple(self._sockets)

    def start(self) -> None:
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def is_serving(self) -> bool:
        return bool(self._sockets)

    def close(self) -> None:
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        self._sockets.clear()
        self._closed.set()

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    async def start_serving(self) -> None:
        """Serving starts with the server; nothing to do."""

    async def serve_forever(self) -> None:
        await self._closed.wait()

    def _accept(self, sock: socket.socket) -> None:
        for _ in range(ACCEPT_BATCH):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while it waited: take the next one
            except OSError as exc:
                if exc.errno not in _SHED:
                    raise
                self._pause(sock, exc)
                return
            conn.setblocking(False)
            self._open(conn)

    def _open(self, conn: socket.socket) -> None:
        task = self._loop.create_task(self._loop.connect_accepted_socket(self._factory, conn))
        self._opening.add(task)
        task.add_done_callback(self._opened)

    def _opened(self, task: asyncio.Task[Any]) -> None:
        self._opening.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            log.warning("an accepted connection could not be opened: %r", exc)

    def _pause(self, sock: socket.socket, exc: OSError) -> None:
        log.error("not accepting connections for %.0f s: %s", RETRY_SECONDS, exc)
        self._loop.remove_reader(sock.fileno())
        self._loop.call_later(RETRY_SECONDS, self._resume, sock)

    def _resume(self, sock: socket.socket) -> None:
        if sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)
