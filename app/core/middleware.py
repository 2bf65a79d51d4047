"""ASGI middleware: request ids, access logs and metrics, security headers, body-size cap."""

from __future__ import annotations

import itertools
import logging
import re
import secrets
import time

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import PayloadTooLarge, problem_response
from app.core.metrics import Metrics

access_log = logging.getLogger("broadsheet.access")

_REQUEST_ID_OK = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
# The docs pages run Swagger's and ReDoc's scripts; every other response is data only.
_API_CSP = (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'")
_DOCS_PREFIXES = ("/docs", "/redoc", "/static-offline-docs", "/billing/local")
# Answers that carry tokens or someone's personal data: no cache may keep them (RFC 6749
# section 5.1 for token answers), whatever the route forgot to say.
_PRIVATE_PREFIXES = (
    "/api/v1/auth/",
    "/api/v1/me",
    "/api/v1/admin/",
    "/api/v1/billing/checkout",
    "/api/v1/billing/portal",
)
_NO_STORE = (b"cache-control", b"no-store")


class RequestContextMiddleware:
    """Give each request an id, log it as JSON, count it, and add security headers."""

    def __init__(self, app: ASGIApp, metrics: Metrics, *, hsts: bool) -> None:
        self.app = app
        # A random prefix per process and a counter: unique like a uuid4, at a tenth the cost.
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count(1)
        self.metrics = metrics
        self.extra_headers = list(SECURITY_HEADERS)
        if hsts:
            self.extra_headers.append(
                (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
            )

    def _next_id(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or self._next_id()
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        path: str = scope["path"]
        csp = not path.startswith(_DOCS_PREFIXES)
        private = path.startswith(_PRIVATE_PREFIXES)

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(self.extra_headers)
                if csp:
                    headers.append(_API_CSP)
                if private and not any(name == b"cache-control" for name, _ in headers):
                    headers.append(_NO_STORE)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "<unmatched>"
            self.metrics.observe(scope["method"], template, status, elapsed)
            if access_log.isEnabledFor(logging.INFO):
                access_log.info(
                    "request",
                    extra={
                        "request_id": request_id,
                        "method": scope["method"],
                        "path": path,
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            return candidate if _REQUEST_ID_OK.match(candidate) else None
    return None


class BodySizeLimitMiddleware:
    """Refuse request bodies over `max_bytes` with 413, declared or streamed (chunked)."""

    def __init__(self, app: ASGIApp, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        # Exact paths allowed a bigger body (a member CSV import); everything else gets the cap.
        self.larger = larger or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_bytes)
        has_body = False
        for name, value in scope["headers"]:
            if name == b"transfer-encoding":
                has_body = True
            elif name == b"content-length":
                has_body = True
                try:
                    declared = int(value)
                except ValueError:
                    declared = limit + 1
                if declared > limit:
                    await _too_large(scope, send, limit)
                    return
        if not has_body:
            # Neither header: HTTP/1.1 says there is no body, so nothing to count.
            await self.app(scope, receive, send)
            return
        received = 0
        exceeded = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise PayloadTooLarge(f"The request body exceeds {limit} bytes.")
            return message

        async def guarded_send(message: Message) -> None:
            # The app may turn our exception into its own error (FastAPI answers 400 for any
            # failure while reading a body): whatever it sends, the client gets the 413.
            if not exceeded:
                await send(message)
            elif message["type"] == "http.response.start":
                await _too_large(scope, send, limit)

        await self.app(scope, limited_receive, guarded_send)


async def _too_large(scope: Scope, send: Send, limit: int) -> None:
    response = problem_response(
        413,
        "payload_too_large",
        "Request body too large",
        f"The request body exceeds {limit} bytes.",
        request=Request(scope),
        headers={"Connection": "close"},
    )

    async def no_body() -> Message:
        return {"type": "http.disconnect"}

    await response(scope, no_body, send)
