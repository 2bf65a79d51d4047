"""Fast JSON encoding shared by responses and logs."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse


def dumps(value: Any) -> bytes:
    """Give back `value` as compact JSON bytes (datetimes as ISO-8601)."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)


class ORJSONResponse(JSONResponse):
    """A JSON response rendered with orjson."""

    def render(self, content: Any) -> bytes:
        return dumps(content)
