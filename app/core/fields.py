"""Request field types shared by every domain: what the database can hold, said once.

Ids and counters stay inside PostgreSQL's `integer` (the widest our columns are on both
databases), so an id like 2**31 or 2**63 is a 422 rather than an overflow in the driver.
Text fields refuse control characters, which break mail headers, XML feeds and terminals;
one-line fields refuse line breaks too. Timestamps are converted to UTC while validating,
so a date at the edge of the calendar is a 422, not an overflow later.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated

import annotated_types as at
from pydantic import AfterValidator, BeforeValidator

INT_MAX = 2**31 - 1
INT_MIN = -(2**31)

Id = Annotated[int, at.Ge(1), at.Le(INT_MAX)]
Int32 = Annotated[int, at.Ge(INT_MIN), at.Le(INT_MAX)]

# C0 and C1 controls and DEL, and the Unicode line and paragraph separators.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Multi-line text keeps tab, line feed and carriage return.
_TEXT_CONTROLS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# Both run before the length check, so whitespace alone counts as empty.
def _stripped(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


def _collapsed(value: object) -> object:
    return " ".join(value.split()) if isinstance(value, str) else value


def _one_line(value: str) -> str:
    if _CONTROLS.search(value):
        raise ValueError("line breaks and control characters are not allowed")
    return value


def _text(value: str) -> str:
    if _TEXT_CONTROLS.search(value):
        raise ValueError("control characters are not allowed")
    return value


def _utc(value: datetime) -> datetime:
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("the time is outside the supported range") from exc


# A name, a subject, a label: one line, edges trimmed; a line break is refused.
OneLine = Annotated[str, BeforeValidator(_stripped), AfterValidator(_one_line)]
# A title or a subtitle: any run of whitespace (line breaks included) becomes one space.
Collapsed = Annotated[str, BeforeValidator(_collapsed), AfterValidator(_one_line)]
# Markdown bodies and other multi-line text.
Text = Annotated[str, AfterValidator(_text)]
# A calendar day for reports and filters, far enough from the calendar's ends to add to.
Day = Annotated[date, at.Ge(date(1900, 1, 1)), at.Le(date(9998, 12, 31))]
# Any timestamp a client sends; naive ones are taken as UTC.
UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
