"""What a database driver's error means: unavailable (503), a broken constraint (4xx) or a bug.

SQLAlchemy wraps driver errors, asyncpg raises its own at connect time and the direct reads
and writes raise sqlite3's: each is judged by the SQLSTATE or SQLite result code found along
its chain of causes, never by class names or message text.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from enum import StrEnum

import asyncpg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

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


def error_code(exc: BaseException) -> str:
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


class Violation(StrEnum):
    """The kinds of broken constraint a client's input can cause."""

    unique = "unique"
    foreign_key = "foreign_key"
    not_null = "not_null"
    check = "check"


_PG_VIOLATIONS = {
    "23505": Violation.unique,
    "23503": Violation.foreign_key,
    "23502": Violation.not_null,
    "23514": Violation.check,
}
# SQLite's extended SQLITE_CONSTRAINT codes: primary key and unique, foreign key, not null,
# check.
_SQLITE_VIOLATIONS = {
    1555: Violation.unique,
    2067: Violation.unique,
    787: Violation.foreign_key,
    1299: Violation.not_null,
    275: Violation.check,
}


def violation(exc: BaseException) -> Violation | None:
    """Give back the constraint `exc` says a statement broke, or None for any other error."""
    for err in _causes(exc):
        found = _PG_VIOLATIONS.get(_sqlstate(err))
        code = getattr(err, "sqlite_errorcode", None) if isinstance(err, sqlite3.Error) else None
        found = found or (_SQLITE_VIOLATIONS.get(code) if isinstance(code, int) else None)
        if found is not None:
            return found
    return None


def is_out_of_range(exc: BaseException) -> bool:
    """Tell whether `exc` is a value the column cannot hold (SQLSTATE class 22)."""
    return any(_sqlstate(err).startswith("22") for err in _causes(exc))
