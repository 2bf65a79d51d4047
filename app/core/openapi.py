"""The OpenAPI document, told truthfully: every error a route can answer, as the problem+json
it really sends, and the bearer token on the routes that read one.

FastAPI documents a route's success answer and a 422 shaped like its own validation error.
Here each operation also gets what every route of its kind can answer (a bad or missing
token, a role it lacks, a path that names nothing, a body that is not JSON or too large, the
database away), derived from what the route depends on, plus what it declares itself.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.routing import BaseRoute

from app.core.errors import PROBLEM_JSON

Auth = Literal["optional", "required", "role"]
_AUTH_ATTRIBUTE = "__broadsheet_auth__"
_ORDER: dict[Auth, int] = {"optional": 1, "required": 2, "role": 3}

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, clients branch on it.",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "The fields that were missing or invalid.",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": ["string", "integer"]}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_DESCRIPTIONS = {
    400: "Malformed JSON or an invalid cursor",
    401: "Missing, invalid or expired access token",
    403: "Not allowed to the caller",
    404: "No such resource",
    409: "Conflicts with the current state",
    413: "Request body too large",
    422: "Invalid input",
    428: "A precondition header is required",
    429: "Too many requests (see Retry-After)",
    503: "The database is unavailable (see Retry-After)",
}


def auth(kind: Auth) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a dependency as reading the bearer token (`optional`, `required`, or `role`)."""

    def mark(dependency: Callable[..., Any]) -> Callable[..., Any]:
        setattr(dependency, _AUTH_ATTRIBUTE, kind)
        return dependency

    return mark


def install(app: FastAPI) -> None:
    """Make `app.openapi()` build the truthful document once."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def document(app: FastAPI) -> dict[str, Any]:
    """The app's OpenAPI document with errors and security filled in per operation."""
    spec = get_openapi(
        title=app.title,
        version=app.version,
        summary=app.summary,
        routes=app.routes,
    )
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    components["securitySchemes"] = {
        "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    for route in _api_routes(app.routes):
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = spec["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete(operation, route)
    return spec


def _complete(operation: dict[str, Any], route: APIRoute) -> None:
    kind = _auth_of(route)
    body = route.body_field is not None
    statuses = {422, 503}
    if body:
        statuses |= {400, 413}
    if any(p.alias == "cursor" for p in _query_params(route.dependant)):
        statuses.add(400)
    if route.dependant.path_params:
        statuses.add(404)
    if kind is not None:
        statuses.add(401)
        operation["security"] = [{"bearer": []}] if kind != "optional" else [{"bearer": []}, {}]
    if kind == "role":
        statuses.add(403)
    responses = operation.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(str(status), {})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            response["description"] = response.get("description") or _DESCRIPTIONS.get(
                int(status), "Error"
            )
            if response["description"] == "Validation Error":
                response["description"] = _DESCRIPTIONS[422]
            response["content"] = {PROBLEM_JSON: {"schema": _PROBLEM_REF}}


def _api_routes(routes: list[BaseRoute]) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        # FastAPI keeps an included router's routes on the router itself.
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _api_routes(included.routes)


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    pending = [dependant]
    while pending:
        current = pending.pop()
        yield current
        pending.extend(current.dependencies)


def _query_params(dependant: Dependant) -> Iterator[Any]:
    for current in _dependants(dependant):
        yield from current.query_params


def _auth_of(route: APIRoute) -> Auth | None:
    calls = [route.endpoint, *(d.call for d in _dependants(route.dependant) if d.call)]
    found: list[Auth] = []
    for call in calls:
        kind = getattr(call, _AUTH_ATTRIBUTE, None)
        if kind is not None:
            found.append(kind)
    if not found:
        return None
    return sorted(found, key=_ORDER.__getitem__)[-1]


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route that can also answer these error statuses; the document
    gives each the problem+json body it really is."""
    return {status: {} for status in statuses}
