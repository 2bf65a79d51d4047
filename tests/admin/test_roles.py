"""Every /api/v1/admin route, walked with every role: the answer must match the rule table.

The table is keyed by route; a new admin route without a rule fails this test.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from httpx import AsyncClient

from app.accounts.models import Role
from tests.factories import Factory

ADMIN_ONLY = (
    "/api/v1/admin/members",
    "/api/v1/admin/stats",
    "/api/v1/admin/plans",
    "/api/v1/admin/tiers",
    "/api/v1/admin/audit",
    "/api/v1/admin/billing",
)
EDITORS = ("/api/v1/admin/newsletters", "/api/v1/admin/comments", "/api/v1/admin/tags")
STAFF = ("/api/v1/admin/articles",)


def allowed_roles(path: str) -> set[str]:
    """The rule: admins for members, stats, plans, tiers, audit, billing; editors for
    newsletters and comments; every staff role for articles (authors then see only their
    own)."""
    if path.startswith(ADMIN_ONLY):
        return {"admin"}
    if path.startswith(EDITORS):
        return {"editor", "admin"}
    if path.startswith(STAFF):
        return {"author", "editor", "admin"}
    raise AssertionError(f"no access rule for {path}: add one to tests/admin/test_roles.py")


def _walk(routes: list[Any]) -> list[APIRoute]:
    # FastAPI keeps included routers as wrappers around the original router's routes.
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):
            found.extend(_walk(route.original_router.routes))
    return found


def admin_routes(app: FastAPI) -> list[tuple[str, str]]:
    out = []
    for route in _walk(list(app.routes)):
        if route.path.startswith("/api/v1/admin"):
            for method in sorted((route.methods or set()) - {"HEAD"}):
                out.append((method, route.path))
    return out


def test_every_admin_route_has_a_rule(app: FastAPI) -> None:
    routes = admin_routes(app)
    assert len(routes) > 40
    for _, path in routes:
        allowed_roles(path)


@pytest.mark.parametrize("role", ["anonymous", "reader", "author", "editor", "admin"])
async def test_role_by_route_table(
    app: FastAPI, client: AsyncClient, factory: Factory, role: str
) -> None:
    headers = {}
    if role != "anonymous":
        headers = (await factory.member(role=Role(role))).headers
    for method, path in admin_routes(app):
        url = re.sub(r"\{[^}]+\}", "999999", path)
        response = await client.request(method, url, headers=headers, json={})
        if role == "anonymous":
            assert response.status_code == 401, (method, path)
        elif role not in allowed_roles(path):
            assert response.status_code == 403, (method, path, response.status_code)
        else:
            # Allowed through: whatever the handler says next (404 for the made-up id, 422 for
            # the empty body, 200 for lists), never an authorisation refusal or a crash.
            assert response.status_code not in (401, 403, 500), (method, path, response.text)
