"""HTTP for accounts: /api/v1/auth/* (sign-up, sessions, links); /api/v1/me is me_router.py."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Body, Request, Response, status

from app.accounts import links, profile
from app.accounts import service as accounts
from app.accounts.auth_context import AuthContext
from app.accounts.deps import AuthContextDep, ClaimsDep, CurrentUser
from app.accounts.errors import CsrfFailed, InvalidCredentials, RefreshRejected
from app.accounts.schemas import (
    Accepted,
    LoginIn,
    LogoutIn,
    MagicLinkIn,
    MagicLinkVerifyIn,
    PasswordResetConfirmIn,
    PasswordResetIn,
    RefreshIn,
    SignupIn,
    TokenIn,
    TokenPair,
)
from app.core.config import API_PREFIX
from app.core.deps import ReadSessionDep, SessionDep
from app.core.openapi import errors
from app.core.ratelimit import RateLimiter
from app.core.routing import api_router
from app.core.security import sign

auth_router = api_router(prefix=f"{API_PREFIX}/auth", tags=["auth"])

REFRESH_COOKIE = "broadsheet_refresh"
CSRF_COOKIE = "broadsheet_csrf"
CSRF_HEADER = "x-csrf-token"
REFRESH_PATH = f"{API_PREFIX}/auth/refresh"
_SENT = "If the address can receive it, an email is on its way."


def limiter_of(request: Request) -> RateLimiter:
    """The app's rate limiter."""
    limiter: RateLimiter = request.app.state.limiter
    return limiter


def _token_response(
    response: Response, auth: AuthContext, issued: accounts.IssuedTokens, *, cookie: bool
) -> TokenPair:
    if not cookie:
        return TokenPair(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            refresh_token=issued.refresh_token,
        )
    csrf = _csrf_token(auth, issued.refresh_token)
    max_age = auth.settings.refresh_token_days * 86400
    secure = auth.settings.refresh_cookie_secure
    response.set_cookie(
        REFRESH_COOKIE,
        issued.refresh_token,
        max_age=max_age,
        path=REFRESH_PATH,
        httponly=True,
        secure=secure,
        samesite="lax",
    )
    # Double-submit CSRF: script on the frontend's origin reads this and echoes it in a header.
    response.set_cookie(
        CSRF_COOKIE, csrf, max_age=max_age, path="/", httponly=False, secure=secure, samesite="lax"
    )
    response.headers["Cache-Control"] = "no-store"
    return TokenPair(
        access_token=issued.access_token, expires_in=issued.expires_in, csrf_token=csrf
    )


def clear_cookies(response: Response, auth: AuthContext) -> None:
    """Remove the refresh and CSRF cookies."""
    secure = auth.settings.refresh_cookie_secure
    response.delete_cookie(
        REFRESH_COOKIE, path=REFRESH_PATH, httponly=True, secure=secure, samesite="lax"
    )
    response.delete_cookie(CSRF_COOKIE, path="/", secure=secure, samesite="lax")


@auth_router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenPair,
    responses=errors(403, 429),
)
async def signup(
    body: SignupIn, request: Request, response: Response, session: SessionDep, auth: AuthContextDep
) -> TokenPair:
    """Create a reader account (needs `accept_terms: true`) and sign it in."""
    limiter = limiter_of(request)
    ip = limiter.client_ip(request)
    await limiter.hit(auth.settings.signup_rate_limit, f"signup:ip:{limiter.ip_key(ip)}")
    issued = await profile.register(
        session,
        auth,
        email=body.email,
        password=body.password,
        display_name=body.display_name,
        accept_terms=body.accept_terms,
        ip=ip,
    )
    return _token_response(response, auth, issued, cookie=body.refresh_in_cookie)


@auth_router.post("/login", response_model=TokenPair, responses=errors(401, 403, 429))
async def login(
    body: LoginIn,
    request: Request,
    response: Response,
    read: ReadSessionDep,
    session: SessionDep,
    auth: AuthContextDep,
) -> TokenPair:
    """Sign in with email and password. Failures are limited per IP and per account; an
    account others failed on still lets in a caller who has not."""
    limiter = limiter_of(request)
    network = limiter.client_key(request)
    spec = auth.settings.login_rate_limit
    keys = (
        f"login:ip:{network}",
        f"login:account:{body.email}",
        f"login:account:{body.email}:from:{network}",
    )
    await limiter.check(spec, keys[0])
    await limiter.check_account(spec, keys[1], keys[2])
    try:
        issued = await accounts.login(read, session, auth, email=body.email, password=body.password)
    except InvalidCredentials:
        await limiter.hit(spec, *keys)
        raise
    return _token_response(response, auth, issued, cookie=body.refresh_in_cookie)


@auth_router.post("/refresh", response_model=TokenPair, responses=errors(401, 403))
async def refresh(
    request: Request,
    response: Response,
    session: SessionDep,
    auth: AuthContextDep,
    body: Annotated[RefreshIn | None, Body()] = None,
) -> TokenPair:
    """Trade a refresh token (body, or cookie plus X-CSRF-Token) for a new pair; each works once."""
    token = body.refresh_token if body else None
    from_cookie = token is None
    if token is None:
        token = request.cookies.get(REFRESH_COOKIE)
        if not token:
            raise RefreshRejected("No refresh token given.")
        _check_csrf(request, auth, token)
    issued = await accounts.refresh(session, auth, refresh_token=token)
    cookie = from_cookie or bool(body and body.refresh_in_cookie)
    return _token_response(response, auth, issued, cookie=cookie)


def _csrf_token(auth: AuthContext, refresh_token: str) -> str:
    # Bound to the refresh token it goes with: a page that can set cookies on our domain can
    # set a CSRF cookie, but cannot compute this for a refresh cookie it cannot read.
    return sign(auth.settings.jwt_secret, "refresh-csrf", refresh_token)[:43]


def _check_csrf(request: Request, auth: AuthContext, refresh_token: str) -> None:
    given = request.headers.get(CSRF_HEADER, "")
    expected = _csrf_token(auth, refresh_token)
    if not given or not hmac.compare_digest(expected, given):
        raise CsrfFailed("Send the CSRF token in the X-CSRF-Token header.")


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(
    user: CurrentUser,
    claims: ClaimsDep,
    session: SessionDep,
    auth: AuthContextDep,
    body: Annotated[LogoutIn | None, Body()] = None,
) -> Response:
    """Close this session: its refresh tokens stop working and the cookies are cleared."""
    await accounts.logout(
        session,
        user=user,
        session_id=claims.session_id,
        refresh_token=body.refresh_token if body else None,
    )
    out = Response(status_code=status.HTTP_204_NO_CONTENT)
    clear_cookies(out, auth)
    return out


@auth_router.post(
    "/magic-link",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=errors(429),
)
async def magic_link(
    body: MagicLinkIn, request: Request, session: SessionDep, auth: AuthContextDep
) -> Accepted:
    """Email a single-use sign-in link; for a new address with `accept_terms`, a sign-up link.
    The answer and the work done are the same whether or not the address has an account."""
    limiter = limiter_of(request)
    ip = limiter.client_ip(request)
    await limiter.hit(auth.settings.email_rate_limit, *limiter.mail_keys("magic", ip, body.email))
    links.request_magic_link(
        session,
        email=body.email,
        accept_terms=body.accept_terms,
        display_name=body.display_name,
        ip=ip,
    )
    return Accepted(detail=_SENT)


@auth_router.post("/magic-link/verify", response_model=TokenPair, responses=errors(400, 403))
async def magic_link_verify(
    body: MagicLinkVerifyIn, response: Response, session: SessionDep, auth: AuthContextDep
) -> TokenPair:
    """Consume a magic-link token and sign in (creating the account on a sign-up link)."""
    issued = await profile.sign_in_by_link(session, auth, token=body.token)
    return _token_response(response, auth, issued, cookie=body.refresh_in_cookie)


@auth_router.post("/verify-email", response_model=Accepted, responses=errors(400))
async def verify_email(body: TokenIn, session: SessionDep, auth: AuthContextDep) -> Accepted:
    """Confirm an email address (a new account's, or the new one of an email change)."""
    await profile.confirm_email(session, auth.settings, token=body.token)
    return Accepted(status="verified", detail="Your email address is confirmed.")


@auth_router.post(
    "/password-reset",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=errors(429),
)
async def password_reset(
    body: PasswordResetIn, request: Request, session: SessionDep, auth: AuthContextDep
) -> Accepted:
    """Email a password-reset link; the answer is the same whether or not the account exists."""
    limiter = limiter_of(request)
    ip = limiter.client_ip(request)
    await limiter.hit(auth.settings.email_rate_limit, *limiter.mail_keys("reset", ip, body.email))
    links.request_password_reset(session, email=body.email)
    return Accepted(detail=_SENT)


@auth_router.post("/password-reset/confirm", response_model=Accepted, responses=errors(400))
async def password_reset_confirm(
    body: PasswordResetConfirmIn, session: SessionDep, auth: AuthContextDep
) -> Accepted:
    """Set a new password with a reset token; every session of the account is closed."""
    await profile.reset_password(session, auth, token=body.token, new_password=body.new_password)
    return Accepted(status="reset", detail="Your password is changed; sign in again.")
