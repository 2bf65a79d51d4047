"""Who the calling reader is to the paywall, for reader-facing GETs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from app.access.entitlements import ANONYMOUS, Entitlements
from app.accounts.auth_context import AuthContext
from app.accounts.deps import bearer_token
from app.billing.repository import token_entitlements
from app.core.config import Settings
from app.core.db import Reads
from app.core.errors import Unauthorized
from app.core.openapi import auth
from app.core.security import InvalidToken

_READER_KEY = "reader_entitlements"


@auth("optional")
async def reader_entitlements(request: Request) -> Entitlements:
    """Give back the caller's entitlements; anonymous without a token, 401 for a bad one.

    It takes the app's parts from `request` rather than as sub-dependencies: on the article
    page FastAPI's dependency solving cost as much as the database read.
    """
    # Worked out once a request: the cached-page middleware may have done it already.
    known: Entitlements | None = request.scope.get("state", {}).get(_READER_KEY)
    if known is not None:
        return known
    reader = await _entitlements_of_request(request)
    request.scope.setdefault("state", {})[_READER_KEY] = reader
    return reader


async def _entitlements_of_request(request: Request) -> Entitlements:
    state = request.app.state
    auth: AuthContext = state.auth
    reads: Reads = state.db.reads
    settings: Settings = state.settings
    token = bearer_token(request)
    if token is None:
        return ANONYMOUS
    try:
        claims = auth.codec.verify(token)
    except InvalidToken as exc:
        raise Unauthorized("The access token is invalid or expired.", code="token_invalid") from exc
    reader = await token_entitlements(reads, claims, grace_days=settings.billing_grace_days)
    if reader is None:
        raise Unauthorized("The access token is no longer valid.", code="token_invalid")
    return reader


Reader = Annotated[Entitlements, Depends(reader_entitlements)]
