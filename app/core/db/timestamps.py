"""Timestamps as both databases store them and as the app uses them: aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    """Give back the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """Give back `value` as aware UTC; SQLite hands back naive datetimes that are UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def sqlite_ts(value: datetime) -> str:
    """`value` in SQLAlchemy's SQLite DateTime storage format, which stored values compare
    against."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def parse_ts(value: Any) -> datetime | None:
    """Give back a timestamp read by either driver as aware UTC (None stays None)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    return as_utc(datetime.fromisoformat(value))


def parse_required_ts(value: Any) -> datetime:
    """Give back a NOT NULL timestamp column's value as aware UTC."""
    parsed = parse_ts(value)
    if parsed is None:
        raise ValueError("a NOT NULL timestamp came back NULL")
    return parsed
