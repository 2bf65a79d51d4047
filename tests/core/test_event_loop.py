"""The serving loop: every waiting connection accepted in one turn, uvloop's own accept for
a socket shared by workers, and a pause (not a crash) when descriptors run out."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
import uvicorn

from app.cli import EVENT_LOOP
from app.core import event_loop
from app.core.event_loop import PromptAcceptLoop, PromptServer, new_event_loop

CLIENTS = 20


class Recorder(asyncio.Protocol):
    """Counts connections made and echoes what it is sent."""

    made: list[asyncio.BaseTransport]

    def __init__(self, made: list[asyncio.BaseTransport]) -> None:
        self.made = made

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.made.append(transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        cast(asyncio.WriteTransport, self.transport).write(data)


@pytest.fixture
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    running = new_event_loop()
    yield running
    running.close()


def _factory(made: list[asyncio.BaseTransport]) -> Callable[[], asyncio.Protocol]:
    return lambda: Recorder(made)


def _port(server: Any) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


def _turns_until(loop: asyncio.AbstractEventLoop, done: Callable[[], bool], limit: int) -> int:
    """Run the loop turn by turn (a callback that queues itself again runs once a turn) and
    give back how many turns passed before `done()`, or `limit`."""
    turns = 0
    finished = loop.create_future()

    def tick() -> None:
        nonlocal turns
        turns += 1
        if done() or turns >= limit:
            finished.set_result(None)
        else:
            loop.call_soon(tick)

    loop.call_soon(tick)
    loop.run_until_complete(finished)
    return turns


def _connect(port: int, count: int) -> list[socket.socket]:
    # The kernel completes each handshake into the listen backlog before any accept.
    return [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]


def test_connections_waiting_together_are_accepted_in_one_turn(
    loop: asyncio.AbstractEventLoop,
) -> None:
    made: list[asyncio.BaseTransport] = []
    server = loop.run_until_complete(loop.create_server(_factory(made), "127.0.0.1", 0))
    clients = _connect(_port(server), CLIENTS)
    try:
        # uvloop alone takes one connection a turn: it would need CLIENTS turns. Here the
        # accepts take one turn, and opening each transport and calling its protocol a few.
        turns = _turns_until(loop, lambda: len(made) == CLIENTS, limit=2 * CLIENTS)
        assert len(made) == CLIENTS
        assert turns <= 5
    finally:
        for client in clients:
            client.close()
        server.close()
        loop.run_until_complete(server.wait_closed())


def test_an_accepted_connection_is_served_and_closing_stops_accepting(
    loop: asyncio.AbstractEventLoop,
) -> None:
    made: list[asyncio.BaseTransport] = []
    server = loop.run_until_complete(loop.create_server(_factory(made), "127.0.0.1", 0))
    assert isinstance(server, PromptServer) and server.is_serving()
    port = _port(server)

    async def echo() -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"ping")
        answer = await reader.readexactly(4)
        writer.close()
        return answer

    assert loop.run_until_complete(echo()) == b"ping"
    server.close()
    loop.run_until_complete(asyncio.wait_for(server.wait_closed(), 5))
    assert not server.is_serving() and server.sockets == ()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port)).close()


def test_a_socket_handed_in_keeps_uvloops_own_server(loop: asyncio.AbstractEventLoop) -> None:
    # Workers share the supervisor's socket: libuv's one accept a turn spreads connections.
    made: list[asyncio.BaseTransport] = []
    shared = socket.create_server(("127.0.0.1", 0))
    server = loop.run_until_complete(loop.create_server(_factory(made), sock=shared))
    try:
        assert not isinstance(server, PromptServer)
        client = socket.create_connection(shared.getsockname())
        _turns_until(loop, lambda: bool(made), limit=50)
        assert len(made) == 1
        client.close()
    finally:
        server.close()


def test_a_port_in_use_fails_to_bind(loop: asyncio.AbstractEventLoop) -> None:
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        with pytest.raises(OSError) as caught:
            loop.run_until_complete(
                loop.create_server(_factory([]), "127.0.0.1", taken.getsockname()[1])
            )
        assert caught.value.errno == errno.EADDRINUSE
    finally:
        taken.close()


class Exhausted(socket.socket):
    """A listening socket whose first accept finds the process out of descriptors."""

    failures = 1

    def accept(self) -> tuple[socket.socket, Any]:
        if self.failures:
            self.failures -= 1
            raise OSError(errno.EMFILE, "Too many open files")
        return super().accept()


def test_running_out_of_descriptors_pauses_accepting_then_resumes(
    loop: asyncio.AbstractEventLoop,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(event_loop, "RETRY_SECONDS", 0.05)
    listening = Exhausted(socket.AF_INET, socket.SOCK_STREAM)
    listening.bind(("127.0.0.1", 0))
    listening.listen(8)
    listening.setblocking(False)
    made: list[asyncio.BaseTransport] = []
    server = PromptServer(loop, _factory(made), [listening])
    server.start()
    client = socket.create_connection(listening.getsockname())
    try:
        with caplog.at_level(logging.ERROR, "broadsheet.serving"):
            _turns_until(loop, lambda: listening.failures == 0, limit=50)
        assert "not accepting connections" in caplog.text
        assert not made
        # Paused: no reader on the socket, so the waiting connection stays in the backlog.
        assert not loop.remove_reader(listening.fileno())
        loop.run_until_complete(asyncio.sleep(0.2))
        assert len(made) == 1
    finally:
        client.close()
        server.close()


def test_broadsheet_serve_runs_on_this_loop() -> None:
    # uvicorn resolves `broadsheet serve`'s loop option to the factory it calls for a loop.
    factory = uvicorn.Config("app.main:create_app", loop=EVENT_LOOP).get_loop_factory()
    assert factory is not None
    made = factory()
    try:
        assert isinstance(made, PromptAcceptLoop)
    finally:
        made.close()
