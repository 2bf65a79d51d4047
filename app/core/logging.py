"""Structured JSON logs: one object a line, for access logs and application events."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any

from app.core.jsonutil import dumps

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message"}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON object with its `extra=` fields at the top level."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED:
                payload[key] = value
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return dumps(payload).decode()


def configure_logging(level: str, *, json_lines: bool) -> None:
    """Send Broadsheet's logs to stderr, as JSON lines or plain text."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json_lines else logging.Formatter("%(levelname)s %(name)s %(message)s")
    )
    root = logging.getLogger("broadsheet")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
