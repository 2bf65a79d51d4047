"""HTTP for /api/v1/me: the signed-in reader's profile, data export and account deletion."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request, Response, status

from app.accounts import export, profile
from app.accounts.auth_context import AuthContext
from app.accounts.deps import AuthContextDep, CurrentUser
from app.accounts.errors import ReauthLinkSpent, ReauthRequired
from app.accounts.models import User
from app.accounts.router import clear_cookies, limiter_of
from app.accounts.schemas import ExportOut, MeDeleteIn, MeOut, MePatch
from app.core.config import API_PREFIX
from app.core.deps import ReadSessionDep, SessionDep
from app.core.openapi import errors
from app.core.routing import api_router

me_router = api_router(prefix=f"{API_PREFIX}/me", tags=["me"])


@me_router.get("", response_model=MeOut)
async def get_me(
    user: CurrentUser, session: SessionDep, auth: AuthContextDep, response: Response
) -> MeOut:
    """The signed-in reader's profile and access level."""
    response.headers["Cache-Control"] = "private, no-store"
    return await profile.me(session, auth, user)


@me_router.patch("", response_model=MeOut, responses=errors(403, 404, 409, 429))
async def patch_me(
    body: MePatch, user: CurrentUser, request: Request, session: SessionDep, auth: AuthContextDep
) -> MeOut:
    """Change name, email (confirmed by a link to the new address) or password (needs re-auth)."""
    limiter = limiter_of(request)
    if body.email is not None and body.email != user.email:
        # Per account and per address asked for: neither a mail cannon nor a way to test
        # which addresses have accounts (taken or not, the answer is the same).
        await limiter.hit(
            auth.settings.email_rate_limit,
            f"email_change:user:{user.id}",
            f"email_change:email:{limiter.mailbox_key(body.email)}",
        )
    async with _reauth_limited(request, auth, user):
        return await profile.update_me(session, auth, user, body)


@contextlib.asynccontextmanager
async def _reauth_limited(request: Request, auth: AuthContext, user: User) -> AsyncIterator[None]:
    """Let a re-authentication through unless its account or network failed too often;
    count a failure. A stolen access token cannot guess the password at will.

    A link spent between its check and its use is not a guess, so it does not count."""
    limiter = limiter_of(request)
    spec = auth.settings.login_rate_limit
    keys = (f"reauth:user:{user.id}", f"reauth:ip:{limiter.client_key(request)}")
    await limiter.check(spec, *keys)
    try:
        yield
    except ReauthLinkSpent:
        raise
    except ReauthRequired:
        await limiter.hit(spec, *keys)
        raise


@me_router.get("/export", response_model=ExportOut)
async def export_me(user: CurrentUser, session: SessionDep, response: Response) -> dict[str, Any]:
    """Everything Broadsheet stores about the signed-in reader, as JSON."""
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Content-Disposition"] = 'attachment; filename="broadsheet-export.json"'
    return await export.export_data(session, user)


@me_router.delete("", status_code=status.HTTP_204_NO_CONTENT, responses=errors(403, 429))
async def delete_me(
    body: MeDeleteIn,
    request: Request,
    user: CurrentUser,
    read: ReadSessionDep,
    session: SessionDep,
    auth: AuthContextDep,
) -> Response:
    """Delete the account: personal data erased, sessions closed; payment records kept (README)."""
    async with _reauth_limited(request, auth, user):
        await profile.delete_me(
            read,
            session,
            auth,
            request.app.state.gateway,
            user,
            password=body.password,
            reauth_token=body.reauth_token,
        )
    out = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_cookies(out, auth)
    return out
