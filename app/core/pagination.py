"""Cursor pagination: opaque keyset cursors and the `{items, next_cursor}` page shape."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

import orjson
from fastapi import Query
from pydantic import BaseModel

from app.core.db import as_utc
from app.core.errors import InvalidInput
from app.core.fields import INT_MAX, INT_MIN

T = TypeVar("T")

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
# Limits above the maximum are clamped, not refused, so a greedy client still gets a page.
Limit = Annotated[int, Query(ge=1, le=1_000_000, description="Page size (max 100).")]
Cursor = Annotated[str | None, Query(max_length=200, description="From the previous page.")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class InvalidCursor(InvalidInput):
    status, code, title = 400, "invalid_cursor", "Invalid cursor"


def clamp(limit: int) -> int:
    return max(1, min(limit, MAX_LIMIT))


def encode_cursor(*values: str | int | datetime | None) -> str:
    """Give back an opaque cursor for a keyset position."""
    plain = [v.isoformat() if isinstance(v, datetime) else v for v in values]
    return base64.urlsafe_b64encode(orjson.dumps(plain)).decode().rstrip("=")


def decode_cursor(cursor: str, kinds: tuple[type, ...]) -> tuple[object, ...]:
    """Give back the keyset position of a cursor, typed per `kinds`; 400 when it is not ours."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(raw, list) or len(raw) != len(kinds):
            raise ValueError("shape")
        out: list[object] = []
        for kind, value in zip(kinds, raw, strict=True):
            if kind is datetime:
                out.append(as_utc(datetime.fromisoformat(value)))
            elif kind is int:
                # Cursor values are compared with integer columns: out of their range is no
                # position of ours (and an overflow in the driver).
                if not isinstance(value, int) or isinstance(value, bool):
                    raise ValueError("int")
                if not INT_MIN <= value <= INT_MAX:
                    raise ValueError("out of range")
                out.append(value)
            else:
                out.append(str(value))
        return tuple(out)
    except (ValueError, TypeError, OverflowError, binascii.Error, orjson.JSONDecodeError) as exc:
        raise InvalidCursor("The cursor is not valid; start from the first page.") from exc


async def newest_first(
    session: Any,
    query: Any,
    id_column: Any,
    *,
    limit: int,
    cursor: str | None,
    key: Callable[[Any], int] | None = None,
) -> tuple[list[Any], str | None]:
    """Give back one page of `query` by descending id, and the cursor of the next page.

    `key` picks the id out of a row when rows are not plain models (e.g. `(model, count)`).
    """
    if cursor:
        (last,) = decode_cursor(cursor, (int,))
        query = query.where(id_column < last)
    size = clamp(limit)
    rows = list((await session.exec(query.order_by(id_column.desc()).limit(size + 1))).all())
    more = len(rows) > size
    rows = rows[:size]
    if not (more and rows):
        return rows, None
    last_row = rows[-1]
    return rows, encode_cursor(key(last_row) if key else last_row.id)
