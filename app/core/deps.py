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


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """Yield the request's session; it commits before the response is sent, or rolls back."""
    db: Database = request.app.state.db
    async with db.session(write=request.method not in _READ_METHODS) as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
DatabaseDep = Annotated[Database, Depends(get_database)]
# scope="function": the commit runs when the handler returns, before the response leaves,
# so a failed commit can never follow a 2xx.
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
