"""Routes that refuse query parameters they do not read, instead of ignoring them.

A filter the API silently drops (`?tag=a&tag=b` keeping the last, `?q=` on a list that has
no search) gives a client a wrong answer that looks right; a 422 tells them at once.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Union, get_args, get_origin

from fastapi import APIRouter
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response

from app.core.errors import InvalidInput

_SEQUENCES = (list, tuple, set, frozenset)


class UnknownParameter(InvalidInput):
    code, title = "unknown_parameter", "Unknown query parameter"


class RepeatedParameter(InvalidInput):
    code, title = "repeated_parameter", "Query parameter given twice"


class StrictQueryRoute(APIRoute):
    """An APIRoute answering 422 to a query parameter it does not take, or takes only once."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        once, many = _query_names(self.dependant)

        async def strict(request: Request) -> Response:
            seen: set[str] = set()
            for name, _ in request.query_params.multi_items():
                if name in once:
                    if name in seen:
                        raise _refusal(RepeatedParameter, name, "Give this parameter once.")
                    seen.add(name)
                elif name not in many:
                    raise _refusal(UnknownParameter, name, "This endpoint takes no such parameter.")
            return await handler(request)

        return strict


def _refusal(kind: type[InvalidInput], name: str, message: str) -> InvalidInput:
    return kind(f"{message} ({name})", extra={"errors": [{"loc": ["query", name], "msg": message}]})


def _query_names(dependant: Dependant) -> tuple[frozenset[str], frozenset[str]]:
    """The query parameters of a route and its dependencies: single-valued and repeatable."""
    once: set[str] = set()
    many: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            (many if _is_sequence(field.field_info.annotation) else once).add(field.alias)
        pending.extend(current.dependencies)
    return frozenset(once), frozenset(many)


def _is_sequence(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _is_sequence(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        return any(_is_sequence(arg) for arg in get_args(annotation) if arg is not type(None))
    return origin in _SEQUENCES or annotation in _SEQUENCES


def api_router(**options: Any) -> APIRouter:
    """Give back an APIRouter whose routes refuse query parameters they do not take."""
    return APIRouter(route_class=StrictQueryRoute, **options)
