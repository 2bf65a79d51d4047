"""HTTP for readers: sign up, confirm, and RFC 8058 one-click unsubscribe."""

from __future__ import annotations

from html import escape
from typing import Annotated

from fastapi import Form, Query, Request, status
from fastapi.responses import HTMLResponse

from app.accounts.deps import AuthContextDep
from app.accounts.errors import TermsNotAccepted
from app.accounts.schemas import Accepted
from app.core.config import API_PREFIX
from app.core.deps import SessionDep, SettingsDep
from app.core.openapi import errors
from app.core.ratelimit import RateLimiter
from app.core.routing import api_router
from app.newsletter import subscribers
from app.newsletter.schemas import ConfirmIn, SubscribeIn

router = api_router(prefix=f"{API_PREFIX}/newsletter", tags=["newsletter"])

Token = Annotated[str, Query(min_length=10, max_length=200)]
PAGE = """<!doctype html><html><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>{title}</title><style>body{{font-family:system-ui;max-width:32rem;margin:4rem auto}}</style>
</head><body><h1>{title}</h1>{body}</body></html>"""


@router.post(
    "/subscribe",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    responses=errors(404, 429),
)
async def subscribe(
    body: SubscribeIn, request: Request, session: SessionDep, kit: AuthContextDep
) -> Accepted:
    """Sign an address up (needs `accept_terms: true`); a confirmation email follows. Always 202."""
    if not body.accept_terms:
        raise TermsNotAccepted("Subscribing needs accept_terms: true.")
    limiter: RateLimiter = request.app.state.limiter
    ip = limiter.client_ip(request)
    await limiter.hit(
        kit.settings.email_rate_limit, *limiter.mail_keys("subscribe", ip, body.email)
    )
    await subscribers.subscribe(
        session,
        kit,
        email=body.email,
        newsletter_slugs=body.newsletters,
        source=body.source,
        article_slug=body.article_slug,
        ip=ip,
    )
    return Accepted(detail="Check your inbox to confirm the subscription.")


@router.post("/confirm", response_model=Accepted, responses=errors(400))
async def confirm(body: ConfirmIn, session: SessionDep, kit: AuthContextDep) -> Accepted:
    """Confirm a subscription with the token from the opt-in email."""
    await subscribers.confirm(session, kit, token=body.token)
    return Accepted(status="confirmed", detail="You are subscribed.")


@router.get("/unsubscribe", response_class=HTMLResponse, responses=errors(400))
async def unsubscribe_page(
    token: Token, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """A confirmation page; changes nothing (mail scanners follow links)."""
    address, name = await subscribers.describe(session, settings.jwt_secret, token)
    body = (
        f"<p>Stop sending <strong>{escape(name)}</strong> to {escape(address)}?</p>"
        f'<form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click">'
        f'<button type="submit">Unsubscribe</button></form>'
    )
    return HTMLResponse(
        PAGE.format(title="Unsubscribe", body=body), headers={"Cache-Control": "no-store"}
    )


@router.post("/unsubscribe", response_class=HTMLResponse, responses=errors(400))
async def unsubscribe(
    token: Token,
    session: SessionDep,
    settings: SettingsDep,
    one_click: Annotated[str | None, Form(alias="List-Unsubscribe")] = None,
) -> HTMLResponse:
    """RFC 8058 one-click unsubscribe: no login; repeating it is harmless."""
    del one_click  # mail clients send "List-Unsubscribe=One-Click"; the signed token decides
    await subscribers.unsubscribe(session, settings.jwt_secret, token)
    return HTMLResponse(
        PAGE.format(title="Unsubscribed", body="<p>You will not receive it any more.</p>"),
        headers={"Cache-Control": "no-store"},
    )
