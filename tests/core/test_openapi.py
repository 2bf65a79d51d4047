"""The OpenAPI document tells the truth about errors and tokens (the contract fuzzing in
tests/contract holds the routes to it)."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient

PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    ]


async def test_every_error_answer_is_documented_as_the_problem_json_sent(
    client: AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    for path, method, operation in _operations(spec):
        errors = {s: r for s, r in operation["responses"].items() if s >= "400"}
        assert {"422", "503"} <= set(errors), (method, path)
        for status, response in errors.items():
            assert response["content"] == PROBLEM, (method, path, status)


async def test_protected_routes_name_the_bearer_token_and_its_refusals(
    client: AsyncClient,
) -> None:
    spec = (await client.get("/openapi.json")).json()
    assert spec["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    by_route = {(m, p): op for p, m, op in _operations(spec)}
    admin = by_route[("patch", "/api/v1/admin/articles/{article_id}")]
    assert admin["security"] == [{"bearer": []}]
    assert {"401", "403", "404"} <= set(admin["responses"])
    page = by_route[("get", "/api/v1/articles/{slug}")]
    assert page["security"] == [{"bearer": []}, {}]  # anonymous or signed in
    assert "403" not in page["responses"]
    assert "security" not in by_route[("get", "/api/v1/tags")]


async def test_non_json_answers_document_their_own_types(client: AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    types = {
        path: set(spec["paths"][path]["get"]["responses"]["200"]["content"])
        for path in ("/feed.xml", "/sitemap.xml", "/api/v1/admin/members/export.csv", "/metrics")
    }
    assert types == {
        "/feed.xml": {"application/rss+xml"},
        "/sitemap.xml": {"application/xml"},
        "/api/v1/admin/members/export.csv": {"text/csv"},
        "/metrics": {"text/plain"},
    }
