"""Request dependencies shared by every domain: the settings and the database session."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.config import Settings
from app.core.db import Database

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# Every dependency is `async def`, even the trivial ones: FastAPI runs a plain `def` one in
# the thread pool, and that hand-off cost more than a whole cached article read.


async def get_settings_dep(request: Request) -> Settings:
    """Give back the settings the running app was built with."""
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    """Give back the running app's database."""
    db: Database = request.app.state.db
    return db


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield a session for reading only: it takes no write lock, so reads made before a
    password hash or a call to Stripe hold up no writer."""
    db: Database = request.app.state.db
    async with db.session(write=False) as session:
        yield session


# scope="function": the commit runs when the handler returns, before the response leaves,
# so a failed commit can never follow a 2xx.
ReadSessionDep = Annotated[AsyncSession, Depends(get_read_session, scope="function")]


async def get_session(request: Request, read: ReadSessionDep) -> AsyncIterator[AsyncSession]:
    """Yield the request's session: for a write, a write session that commits before the
    response is sent, or rolls back; for a read, the read session itself."""
    if request.method in _READ_METHODS:
        yield read
        return
    db: Database = request.app.state.db
    async with db.session(write=True) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
