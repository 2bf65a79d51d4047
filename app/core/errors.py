"""Errors: AppError and its kinds, and the handlers that turn every failure into problem+json."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

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


async def _database_unavailable(request: Request, exc: Exception) -> Response:
    if not is_database_unavailable(exc):
        return await _unexpected(request, exc)
    log.warning("database unavailable: %s (%s)", type(exc).__name__, _error_code(exc))
    return problem_response(
        503,
        "database_unavailable",
        "Service unavailable",
        "The database cannot serve requests right now; try again shortly.",
        request=request,
        headers={"Retry-After": "5"},
    )


# SQLSTATEs that say "this server cannot serve now", not "this statement is wrong": besides
# class 08 (connection exception), admin and crash shutdown, cannot connect now (starting up,
# shutting down, a standby taking no connections), too many connections, and a read-only
# transaction (a standby, or a primary a failover demoted).
_PG_UNAVAILABLE = frozenset({"57P01", "57P02", "57P03", "53300", "25006"})
# Of those, the ones after which a connection is no use: the server dropped it, or it sits on
# a server that takes no writes; a fresh one may reach the server that does.
_PG_STALE = frozenset({"57P01", "57P02", "25006"})
# SQLite primary result codes: busy, read-only, I/O error, full, cannot open.
_SQLITE_READONLY = 8
_SQLITE_UNAVAILABLE = frozenset({5, _SQLITE_READONLY, 10, 13, 14})


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc`, the driver error SQLAlchemy wrapped in it, and what each was raised from."""
    err: BaseException | None = exc
    # Cause chains are short; the bound keeps a cyclic one from looping.
    for _ in range(8):
        if err is None:
            return
        yield err
        err = err.orig if isinstance(err, DBAPIError) and err.orig is not None else err.__cause__


def _sqlstate(err: BaseException) -> str:
    # asyncpg names it sqlstate; SQLAlchemy's asyncpg adapter copies it as sqlstate and pgcode.
    value = getattr(err, "sqlstate", None) or getattr(err, "pgcode", None)
    return value if isinstance(value, str) else ""


def _sqlite_code(err: BaseException) -> int | None:
    # Extended codes (SQLITE_READONLY_DIRECTORY, SQLITE_IOERR_WRITE...) keep the primary code
    # in their low byte. Errors the module raises itself carry no code.
    code = getattr(err, "sqlite_errorcode", None) if isinstance(err, sqlite3.Error) else None
    return code & 0xFF if isinstance(code, int) else None


def _error_code(exc: BaseException) -> str:
    """The first SQLSTATE or SQLite error name in `exc`'s chain, for the log."""
    for err in _causes(exc):
        code = _sqlstate(err) or getattr(err, "sqlite_errorname", "")
        if isinstance(code, str) and code:
            return code
    return "no code"


def is_database_unavailable(exc: BaseException) -> bool:
    """Tell whether `exc` means the database cannot serve now (503), not a bug or bad data."""
    if isinstance(exc, PoolTimeoutError | ConnectionError):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    for err in _causes(exc):
        state = _sqlstate(err)
        if state.startswith("08") or state in _PG_UNAVAILABLE:
            return True
        if _sqlite_code(err) in _SQLITE_UNAVAILABLE:
            return True
        if isinstance(err, OSError | asyncpg.InterfaceError):
            return True
    return False


def leaves_connection_unusable(exc: BaseException) -> bool:
    """Tell whether the connection that raised `exc` should be closed rather than reused.

    An SQLite connection opened while the file was read-only stays read-only after the file
    is writable again; only a new one can write.
    """
    for err in _causes(exc):
        state = _sqlstate(err)
        if state.startswith("08") or state in _PG_STALE:
            return True
        if _sqlite_code(err) == _SQLITE_READONLY:
            return True
    return False


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
        app.add_exception_handler(kind, _database_unavailable)
    app.add_exception_handler(Exception, _unexpected)
