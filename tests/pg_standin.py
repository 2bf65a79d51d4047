"""A PostgreSQL server that refuses every session, speaking just enough of the wire protocol.

A real server answers a StartupMessage with an ErrorResponse while it starts up, shuts down
or runs as a standby that takes no connections (SQLSTATE 57P03). Waiting for those moments
on a real cluster is a race; this peer answers that way every time, so the drivers' real
code paths are exercised deterministically.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator

_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102


def error_response(sqlstate: str, message: str) -> bytes:
    """Give back an ErrorResponse ('E') message with a FATAL severity."""
    fields = b""
    for tag, value in (("S", "FATAL"), ("V", "FATAL"), ("C", sqlstate), ("M", message)):
        fields += tag.encode() + value.encode() + b"\0"
    fields += b"\0"
    return b"E" + struct.pack("!I", len(fields) + 4) + fields


class RefusingPostgres:
    """Answers every session's start-up with one ErrorResponse, then hangs up."""

    def __init__(
        self, sqlstate: str = "57P03", message: str = "the database system is starting up"
    ) -> None:
        self.reply = error_response(sqlstate, message)
        self.startups = 0
        self._server: asyncio.Server | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "the server is not running"
        return int(self._server.sockets[0].getsockname()[1])

    def url(self, database: str = "broadsheet") -> str:
        """Give back an SQLAlchemy asyncpg URL pointing at this server."""
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (length,) = struct.unpack("!I", await reader.readexactly(4))
                body = await reader.readexactly(length - 4)
                (code,) = struct.unpack("!I", body[:4])
                if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                    # 'N': no encryption here; the client goes on in plain text.
                    writer.write(b"N")
                    await writer.drain()
                    continue
                if code != _CANCEL_REQUEST:
                    self.startups += 1
                    writer.write(self.reply)
                    await writer.drain()
                break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[RefusingPostgres]:
        """Serve on a free loopback port while the block runs."""
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
