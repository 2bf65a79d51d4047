"""Member CSV as text: safe cells, a forgiving reader, and what Ghost's and Substack's
export columns mean for a member.

Cells a spreadsheet would run as formulas are neutralised on the way out (and read back as
written on the way in). The reader is strict about quoting and hands back a bad record as a
numbered error instead of raising, so one broken line never fails a whole import.

Import columns, Ghost: email, name, subscribed_to_emails, complimentary_plan,
stripe_customer_id, created_at, deleted_at, labels, tiers (id and note are ignored).
`tiers` (or `tier`) names the tiers of the row's comp: with a complimentary_plan column, only
a comped row's (a paying member's tiers at the source came with a subscription, which no
import brings); in a file without one, a row naming tiers is a comp of those tiers.
Substack: email, active_subscription, expiry, email_disabled, created_at (plan and
first_payment_at are ignored). Our own export's role and disabled are ignored as well: an
import never changes a role.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, TextIO

from app.accounts.emailaddr import normalise_email
from app.core.db import as_utc
from app.core.errors import InvalidInput

# OWASP's list: a cell starting with one of these is a formula (or becomes one) in Excel,
# LibreOffice and Google Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# The import route accepts bodies up to 20 MiB; with the limit at that size the parser never
# refuses a field of an accepted body, and the import bounds the cells it reads itself.
FIELD_SIZE_LIMIT = 20 * 1024 * 1024
TRUE = frozenset({"true", "yes", "1", "y", "t", "subscribed"})
FALSE = frozenset({"false", "no", "0", "n", "f", "", "unsubscribed"})
# Stripe's customer ids (and the local gateway's cus_local_...), within the column's 255.
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9_]{1,251}")
# How much of an uploaded file is checked for UTF-8 at a time.
READ_BYTES = 1024 * 1024
# No cell the import reads is anywhere near this long; a longer one is a broken or hostile file.
MAX_CELL = 10_000
READ = (
    "email",
    "name",
    "labels",
    "stripe_customer_id",
    "created_at",
    "deleted_at",
    "subscribed_to_emails",
    "subscribed",
    "email_disabled",
    "complimentary_plan",
    "active_subscription",
    "expiry",
    "tiers",
    "tier",
)
# What separates the tiers of one cell: Ghost writes commas; `;` is read too (a tier slug
# has neither).
TIER_SEPARATORS = re.compile(r"[,;]")

csv.field_size_limit(max(csv.field_size_limit(), FIELD_SIZE_LIMIT))


def safe_cell(value: str) -> str:
    """Give back `value` with a leading ' if a spreadsheet would otherwise run it."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def original_cell(value: str) -> str:
    """Undo safe_cell, so an exported file imports as the values it was made from."""
    if value.startswith("'") and value[1:].startswith(FORMULA_STARTS):
        return value[1:]
    return value


class SafeWriter:
    """CSV text a row at a time, every cell neutralised; take() gives what was written since."""

    def __init__(self) -> None:
        self._out = io.StringIO()
        self._writer = csv.writer(self._out)

    def row(self, cells: Sequence[str]) -> None:
        """Write one row."""
        self._writer.writerow([safe_cell(cell) for cell in cells])

    def take(self) -> str:
        """Give back the text written since the last take and forget it."""
        text = self._out.getvalue()
        self._out.seek(0)
        self._out.truncate()
        return text


def check_utf8(body: BinaryIO) -> None:
    """Refuse a file that is not UTF-8 as a whole, reading it a piece at a time; it is read
    from its start again afterwards."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        while piece := body.read(READ_BYTES):
            decoder.decode(piece)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InvalidInput("The CSV must be UTF-8.", code="csv_not_utf8") from exc
    finally:
        body.seek(0)


@contextmanager
def csv_text(body: BinaryIO) -> Iterator[TextIO]:
    """The file as text for the CSV reader (a leading byte-order mark dropped, line ends kept
    as written), read as the reader goes; the file stays open for its owner."""
    text = io.TextIOWrapper(body, encoding="utf-8-sig", newline="")
    try:
        yield text
    finally:
        text.detach()


@dataclass(frozen=True, slots=True)
class Record:
    """One row of the file: its spreadsheet row number (the header is 1), cells or an error."""

    number: int
    cells: list[str]
    error: str | None = None


@dataclass
class Table:
    header: list[str]
    records: Iterator[Record]


def read_table(lines: Iterable[str]) -> Table:
    """Read the header (names stripped and lower-cased) and give back the rows lazily.

    `lines` is the file's text, as a text file opened with newline="" gives it.
    An empty file, an unreadable header or a column named twice is refused as a whole."""
    reader = csv.reader(lines, strict=True)
    number = 0
    header: list[str] | None = []
    while header is not None and not any(cell.strip() for cell in header):
        number += 1
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InvalidInput(
                f"The header row is not readable CSV ({exc}).", code="csv_bad_header"
            ) from exc
    if header is None:
        raise InvalidInput("The CSV is empty: it has not even a header row.", code="csv_empty")
    names = [cell.strip().lstrip("\ufeff").lower() for cell in header]
    repeated = sorted(name for name, n in Counter(names).items() if name and n > 1)
    if repeated:
        raise InvalidInput(
            f"The header names a column more than once: {', '.join(repeated)}.",
            code="csv_duplicate_column",
        )
    return Table(header=names, records=_records(reader, number))


def _records(reader: Iterator[list[str]], number: int) -> Iterator[Record]:
    while True:
        number += 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            reason = (
                f"the CSV is malformed here ({exc}); a cell holding a comma, a quote or a "
                'line break must be in double quotes, with its quotes doubled ("")'
            )
            yield Record(number, [], reason)
            continue
        yield Record(number, cells)


def parse_bool(value: str, column: str) -> bool:
    """Read a yes/no cell (true/false, yes/no, 1/0, ...; empty is no) or raise ValueError."""
    lowered = value.strip().lower()
    if lowered in TRUE:
        return True
    if lowered in FALSE:
        return False
    raise ValueError(f"{column} must be true or false, not {value[:40]!r}")


def parse_time(value: str, column: str) -> datetime | None:
    """Read an ISO-8601 date or timestamp (UTC when it names no zone); empty is None."""
    if not value.strip():
        return None
    try:
        return as_utc(datetime.fromisoformat(value.strip()))
    except ValueError as exc:
        raise ValueError(f"{column} is not an ISO date: {value[:40]!r}") from exc


@dataclass
class ImportReport:
    dry_run: bool
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    comped: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def error(self, row: int, email: str, reason: str) -> None:
        """Record a row that was skipped and why."""
        self.errors.append({"row": row, "email": email[:320], "reason": reason})

    def summary(self) -> dict[str, object]:
        """The counts, for the import's audit entry."""
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "comped": self.comped,
            "errors": len(self.errors),
        }


@dataclass(slots=True)
class MemberRow:
    """One valid row: the member it describes, in our terms."""

    number: int
    email: str
    name: str
    labels: list[str]
    customer: str
    created_at: datetime | None
    subscribed: bool
    comp: bool
    # The end of a comp that stands for a period paid at the previous platform.
    comp_until: datetime | None
    # The tiers (slugs or names, as written) the comp is for; none is a comp of every tier.
    comp_tiers: list[str] = field(default_factory=list)


class _Cells:
    """The cells of one record the import reads, by column name; None for a missing column."""

    def __init__(self, index: dict[str, int], cells: list[str]) -> None:
        width = len(cells)
        self.values = {
            name: original_cell(cells[at]) if at < width else "" for name, at in index.items()
        }

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def text(self, name: str) -> str:
        return (self.values.get(name) or "").strip()

    def flag(self, name: str) -> bool | None:
        value = self.values.get(name)
        return None if value is None else parse_bool(value, name)


def _subscribed(cells: _Cells) -> bool:
    # An imported list is a list of people who subscribed, unless the file says otherwise.
    stated = cells.flag("subscribed_to_emails")
    if stated is None:
        stated = cells.flag("subscribed")
    disabled = cells.flag("email_disabled")
    return (stated is None or stated) and not disabled


def _member(number: int, cells: _Cells, now: datetime) -> MemberRow:
    email = normalise_email(cells.get("email") or "")
    for name, value in cells.values.items():
        if len(value) > MAX_CELL:
            raise ValueError(f"{name} is longer than {MAX_CELL:,} characters")
    if cells.text("deleted_at"):
        raise ValueError("the member was deleted at the source (deleted_at is set)")
    customer = cells.text("stripe_customer_id")
    if customer and not CUSTOMER_ID.fullmatch(customer):
        raise ValueError("stripe_customer_id must look like cus_... (at most 255 characters)")
    labels = cells.text("labels")
    comp, comp_until = bool(cells.flag("complimentary_plan")), None
    expiry = parse_time(cells.get("expiry") or "", "expiry")
    if cells.flag("active_subscription") and not comp and expiry is not None and expiry > now:
        # Paid at the previous platform: keep the paid access until the paid period ends.
        comp, comp_until = True, expiry
    named = _items(TIER_SEPARATORS.split(f"{cells.text('tiers')},{cells.text('tier')}"))
    if cells.get("complimentary_plan") is None and named:
        comp = True  # a list made by hand: naming a tier is asking for its comp
    return MemberRow(
        number=number,
        email=email,
        name=cells.text("name")[:120],
        labels=_items(labels.split(",")),
        customer=customer,
        created_at=parse_time(cells.get("created_at") or "", "created_at"),
        subscribed=_subscribed(cells),
        comp=comp,
        comp_until=comp_until,
        comp_tiers=named if comp else [],
    )


def _items(parts: list[str]) -> list[str]:
    return list(dict.fromkeys(x.strip()[:100] for x in parts if x.strip()))


def _columns(header: list[str]) -> dict[str, int]:
    index = {name: at for at, name in enumerate(header) if name in READ}
    if "email" not in index:
        raise InvalidInput(
            "The CSV header has no email column (Ghost and Substack exports have one).",
            code="csv_no_email_column",
        )
    return index


def member_chunks(
    table: Table, report: ImportReport, now: datetime, size: int = 500
) -> Iterator[list[MemberRow]]:
    """The file's valid rows, `size` at a time; every other non-blank row goes to the report."""
    chunk: list[MemberRow] = []
    for row in _member_rows(table, report, now):
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _member_rows(table: Table, report: ImportReport, now: datetime) -> Iterator[MemberRow]:
    header, index = table.header, _columns(table.header)
    seen: set[str] = set()
    for record in table.records:
        if record.error is not None:
            report.rows += 1
            report.error(record.number, "", record.error)
            continue
        if not any(cell.strip() for cell in record.cells):
            continue  # a blank line, or a spreadsheet's row of empty cells
        report.rows += 1
        cells = _Cells(index, record.cells)
        try:
            if any(cell.strip() for cell in record.cells[len(header) :]):
                raise ValueError(
                    f"this row has {len(record.cells)} cells; the header has {len(header)}"
                )
            row = _member(record.number, cells, now)
            if row.email in seen:
                raise ValueError("the email appears twice in this file")
        except ValueError as exc:
            report.error(record.number, cells.text("email"), str(exc))
            continue
        seen.add(row.email)
        yield row
