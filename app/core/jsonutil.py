"""Fast JSON encoding shared by responses and logs."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


def dumps(value: Any) -> bytes:
    """Give back `value` as compact JSON bytes (datetimes as ISO-8601, UTC as "Z")."""
    # UTC as "Z" is what pydantic writes too, so hand-built and model answers look alike.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_UTC_Z)


class ORJSONResponse(JSONResponse):
    """A JSON response rendered with orjson."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
