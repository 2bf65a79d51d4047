"""Who is calling: `CurrentUser`, `OptionalUser` and role checks for routers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request

from app.accounts import repository as repo
from app.accounts.auth_context import AuthContext
from app.accounts.models import STAFF_ROLES, Role, User
from app.accounts.service import token_still_valid
from app.admin import audit
from app.core import openapi
from app.core.db import adopt
from app.core.deps import ReadSessionDep, SessionDep
from app.core.errors import Forbidden, Unauthorized
from app.core.security import AccessClaims, InvalidToken


async def get_auth_context(request: Request) -> AuthContext:
    """Give back the app's AuthContext (settings, token codec, hasher)."""
    auth: AuthContext = request.app.state.auth
    return auth


AuthContextDep = Annotated[AuthContext, Depends(get_auth_context)]


def bearer_token(request: Request) -> str | None:
    """Give back the request's bearer token, None without one; a malformed header is 401."""
    header = request.headers.get("authorization")
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Use 'Authorization: Bearer <access token>'.", code="token_invalid")
    return token.strip()


async def _authenticate(
    request: Request, read: ReadSessionDep, session: SessionDep, auth: AuthContext
) -> User | None:
    token = bearer_token(request)
    if token is None:
        return None
    try:
        claims = auth.codec.verify(token)
    except InvalidToken as exc:
        raise Unauthorized("The access token is invalid or expired.", code="token_invalid") from exc
    # Read outside the write transaction (which begins at the request's first write), then
    # handed to the request's session, through which any change to the account is written.
    user = await repo.get_user(read, claims.user_id)
    if (
        user is None
        or user.disabled
        or user.deleted_at is not None
        or not token_still_valid(user, claims.issued_at)
    ):
        raise Unauthorized("The access token is no longer valid.", code="token_invalid")
    request.state.claims = claims
    return adopt(session, user)


@openapi.auth("optional")
async def optional_user(
    request: Request, read: ReadSessionDep, session: SessionDep, auth: AuthContextDep
) -> User | None:
    """Give back the signed-in user, or None for an anonymous request; a bad token is still 401."""
    return await _authenticate(request, read, session, auth)


@openapi.auth("required")
async def current_user(
    request: Request, read: ReadSessionDep, session: SessionDep, auth: AuthContextDep
) -> User:
    """Give back the signed-in user or answer 401."""
    user = await _authenticate(request, read, session, auth)
    if user is None:
        raise Unauthorized("Sign in to do this.", code="authentication_required")
    return user


async def current_claims(request: Request) -> AccessClaims:
    """Give back the verified claims of the request's access token (after current_user)."""
    claims: AccessClaims = request.state.claims
    return claims


OptionalUser = Annotated[User | None, Depends(optional_user)]
CurrentUser = Annotated[User, Depends(current_user)]
ClaimsDep = Annotated[AccessClaims, Depends(current_claims)]


def require_role(*roles: Role) -> Callable[..., Coroutine[Any, Any, User]]:
    """Give back a dependency that lets only users with one of `roles` through (else 403)."""
    allowed = frozenset(role.value for role in roles)

    @openapi.auth("role")
    async def check(user: CurrentUser, request: Request, session: SessionDep) -> User:
        if user.role not in allowed:
            raise Forbidden("Your role does not allow this.", code="role_forbidden")
        # Staff writes made through this request's session land in the audit log.
        audit.mark_actor(session, user.id, getattr(request.state, "request_id", None))
        return user

    return check


StaffUser = Annotated[User, Depends(require_role(*STAFF_ROLES))]
EditorUser = Annotated[User, Depends(require_role(Role.editor, Role.admin))]
AdminUser = Annotated[User, Depends(require_role(Role.admin))]
