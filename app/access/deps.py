"""What the calling reader may read, for reader-facing GETs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.access.levels import AccessLevel
from app.accounts.auth_context import AuthContext
from app.accounts.deps import bearer_token
from app.billing.repository import token_reader_level
from app.core.config import Settings
from app.core.db import Reads
from app.core.errors import Unauthorized
from app.core.openapi import auth
from app.core.security import InvalidToken

_LEVEL_KEY = "reader_level"


@auth("optional")
async def reader_level(request: Request) -> AccessLevel:
    """Give back the caller's access level; anonymous without a token, 401 for a bad one.

    It takes the app's parts from `request` rather than as sub-dependencies: on the article
    page FastAPI's dependency solving cost as much as the database read.
    """
    # Worked out once a request: the cached-page middleware may have done it already.
    known: AccessLevel | None = request.scope.get("state", {}).get(_LEVEL_KEY)
    if known is not None:
        return known
    level = await _level_of_request(request)
    request.scope.setdefault("state", {})[_LEVEL_KEY] = level
    return level


async def _level_of_request(request: Request) -> AccessLevel:
    state = request.app.state
    auth: AuthContext = state.auth
    reads: Reads = state.db.reads
    settings: Settings = state.settings
    token = bearer_token(request)
    if token is None:
        return AccessLevel.anonymous
    try:
        claims = auth.codec.verify(token)
    except InvalidToken as exc:
        raise Unauthorized("The access token is invalid or expired.", code="token_invalid") from exc
    level = await token_reader_level(reads, claims, grace_days=settings.billing_grace_days)
    if level is None:
        raise Unauthorized("The access token is no longer valid.", code="token_invalid")
    return level


ReaderLevel = Annotated[AccessLevel, Depends(reader_level)]
