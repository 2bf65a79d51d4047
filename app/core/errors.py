"""Errors: AppError and its kinds, and the handlers that turn every failure into problem+json."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from limits.errors import StorageError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from app.core.db.errors import (
    Violation,
    error_code,
    is_database_unavailable,
    is_out_of_range,
    violation,
)
from app.core.jsonutil import dumps

log = logging.getLogger("broadsheet.errors")

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://broadsheet.dev/problems/"


class AppError(Exception):
    """A failure a client can act on: stable `code`, HTTP `status`, human `detail`."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"
    # True for refusals that must still commit what was written first (a revoked token family).
    keep_writes: bool = False

    def __init__(
        self,
        detail: str | None = None,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.title
        if code is not None:
            self.code = code
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class InvalidInput(AppError):
    status, code, title = 422, "invalid_input", "Invalid input"


class Unauthorized(AppError):
    status, code, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, *, code: str | None = None) -> None:
        super().__init__(detail, code=code, headers={"WWW-Authenticate": "Bearer"})


class Forbidden(AppError):
    status, code, title = 403, "forbidden", "Forbidden"


class NotFound(AppError):
    status, code, title = 404, "not_found", "Not found"


class Conflict(AppError):
    status, code, title = 409, "conflict", "Conflict"


class Gone(AppError):
    status, code, title = 410, "gone", "Gone"


class PreconditionFailed(AppError):
    status, code, title = 412, "precondition_failed", "Precondition failed"


class PayloadTooLarge(AppError):
    status, code, title = 413, "payload_too_large", "Request body too large"


class RateLimited(AppError):
    status, code, title = 429, "rate_limited", "Too many requests"

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail, headers={"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(AppError):
    status, code, title = 503, "service_unavailable", "Service unavailable"


def problem_response(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> Response:
    """Give back an RFC 9457 problem+json response."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + code,
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    out_headers = dict(headers or {})
    if request_id:
        out_headers["X-Request-ID"] = request_id
    return Response(dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=out_headers)


def _field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    # Never echo the rejected input back: it may be a password or a token.
    return [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors
    ]


async def _app_error(request: Request, exc: AppError) -> Response:
    return problem_response(
        exc.status,
        exc.code,
        exc.title,
        exc.detail,
        request=request,
        headers=exc.headers,
        extra=exc.extra,
    )


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    errors = _field_errors(exc.errors())
    if any(err["type"] == "json_invalid" for err in errors):
        return problem_response(
            400,
            "malformed_json",
            "Malformed JSON",
            "The request body is not valid JSON.",
            request=request,
            extra={"errors": errors},
        )
    return problem_response(
        422,
        "validation_error",
        "Validation failed",
        "Some fields are missing or invalid.",
        request=request,
        extra={"errors": errors},
    )


_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Request body too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else title
    return problem_response(
        exc.status_code, code, title, detail, request=request, headers=dict(exc.headers or {})
    )


# A broken constraint that a service did not foresee is still the client's input: a unique
# value taken answers 409 in one place instead of a 500 on every route that can hit it.
_VIOLATIONS = {
    Violation.unique: (409, "already_exists", "Already exists", "A unique value is taken."),
    Violation.foreign_key: (422, "invalid_reference", "Invalid reference", "No such record."),
    Violation.not_null: (422, "value_required", "Value required", "A value is missing."),
    Violation.check: (422, "invalid_value", "Invalid value", "A value is not allowed."),
}


async def _database_error(request: Request, exc: Exception) -> Response:
    if is_database_unavailable(exc):
        log.warning("database unavailable: %s (%s)", type(exc).__name__, error_code(exc))
        return problem_response(
            503,
            "database_unavailable",
            "Service unavailable",
            "The database cannot serve requests right now; try again shortly.",
            request=request,
            headers={"Retry-After": "5"},
        )
    kind = violation(exc)
    if kind is not None:
        log.info("constraint violated: %s", kind.value)
        return problem_response(*_VIOLATIONS[kind], request=request)
    if is_out_of_range(exc):
        return await _out_of_range(request, exc)
    return await _unexpected(request, exc)


async def _limits_unavailable(request: Request, exc: Exception) -> Response:
    # Without its counters no limit holds: refusing is safer than letting guesses through.
    log.warning("rate-limit store unavailable: %s", type(exc).__name__)
    return problem_response(
        503,
        "rate_limit_unavailable",
        "Service unavailable",
        "The service cannot check its limits right now; try again shortly.",
        request=request,
        headers={"Retry-After": "5"},
    )


async def _out_of_range(request: Request, exc: Exception) -> Response:
    # A number or a date past what the database or Python can hold: bad input, never a 500.
    log.info("value out of range: %s", type(exc).__name__)
    return problem_response(
        422,
        "value_out_of_range",
        "Value out of range",
        "A number or a date is outside the supported range.",
        request=request,
    )


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error", exc_info=exc)
    return problem_response(
        500,
        "internal_error",
        "Internal server error",
        "Something went wrong on our side; quote the request id when reporting it.",
        request=request,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception type to its problem+json handler."""
    # Starlette types handlers as taking Exception; each is registered for its own class.
    app.add_exception_handler(AppError, _app_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    # Driver errors reach here unwrapped too: asyncpg's at connect time (SQLAlchemy wraps only
    # errors of an open connection) and sqlite3's from the direct writes.
    for kind in (
        DBAPIError,
        PoolTimeoutError,
        ConnectionError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        sqlite3.Error,
    ):
        app.add_exception_handler(kind, _database_error)
    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(StorageError, _limits_unavailable)
    app.add_exception_handler(Exception, _unexpected)
