"""The one database layer: engines, write and read sessions, direct reads and writes, and
the statement helpers every repository uses."""

from app.core.db.database import Database
from app.core.db.direct_reads import Reads, ReadsUnavailable
from app.core.db.direct_writes import DirectWrites
from app.core.db.engines import create_engine, is_sqlite
from app.core.db.gathered import Gathered
from app.core.db.statements import (
    IN_IDS,
    Params,
    Query,
    Row,
    adopt,
    dialect_insert,
    ids_param,
    insert_ignoring_duplicates,
    pk,
)
from app.core.db.timestamps import as_utc, parse_required_ts, parse_ts, utcnow

__all__ = [
    "IN_IDS",
    "Database",
    "DirectWrites",
    "Gathered",
    "Params",
    "Query",
    "Reads",
    "ReadsUnavailable",
    "Row",
    "adopt",
    "as_utc",
    "create_engine",
    "dialect_insert",
    "ids_param",
    "insert_ignoring_duplicates",
    "is_sqlite",
    "parse_required_ts",
    "parse_ts",
    "pk",
    "utcnow",
]
