"""Every failure leaves as problem+json with a stable code, never a stack trace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from app.core.config import Settings
from app.main import create_app
from tests.conftest import make_settings
from tests.smtp import SmtpSink


def assert_problem(response_json: dict[str, object], status: int, code: str) -> None:
    assert response_json["status"] == status
    assert response_json["code"] == code
    assert {"type", "title", "detail"} <= set(response_json)


async def test_unknown_route_is_problem_404(client: AsyncClient) -> None:
    response = await client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert_problem(response.json(), 404, "not_found")


async def test_wrong_method_is_problem_405(client: AsyncClient) -> None:
    response = await client.delete("/healthz")
    assert response.status_code == 405
    assert_problem(response.json(), 405, "method_not_allowed")


async def test_malformed_json_is_400(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login",
        content=b'{"email": "a@b.example",',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert_problem(response.json(), 400, "malformed_json")


async def test_wrong_types_list_the_fields_without_echoing_input(client: AsyncClient) -> None:
    response = await client.post(
        "/api/v1/auth/login", json={"email": ["x"], "password": "hunter2-secret-value"}
    )
    assert response.status_code == 422
    body = response.json()
    assert_problem(body, 422, "validation_error")
    assert any(err["loc"] == ["body", "email"] for err in body["errors"])
    assert "hunter2" not in response.text


async def test_oversized_declared_body_is_413(client: AsyncClient, settings: Settings) -> None:
    big = b"{" + b" " * (settings.max_body_bytes + 10) + b"}"
    response = await client.post(
        "/api/v1/auth/login", content=big, headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert_problem(response.json(), 413, "payload_too_large")


async def test_oversized_chunked_body_is_413(client: AsyncClient, settings: Settings) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(settings.max_body_bytes // 4096 + 2):
            yield b" " * 4096

    response = await client.post(
        "/api/v1/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert_problem(response.json(), 413, "payload_too_large")


async def test_body_limit_is_configurable(
    database_url: str, tmp_path: object, smtp_sink: SmtpSink
) -> None:
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    small = create_app(
        make_settings(database_url, tmp_path / "v", smtp_sink.port, max_body_bytes=2048)
    )
    async with AsyncClient(transport=ASGITransport(app=small), base_url="https://api.test") as http:
        response = await http.post("/api/v1/auth/login", content=b"x" * 3000)
    await small.state.db.dispose()
    assert response.status_code == 413


async def test_unexpected_error_is_generic_500_with_request_id(app: FastAPI) -> None:
    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internal detail /etc/passwd")

    transport = ASGITransport(app=app, raise_app_exceptions=False)
    async with AsyncClient(transport=transport, base_url="https://api.test") as http:
        response = await http.get("/boom", headers={"X-Request-ID": "trace-123"})
    assert response.status_code == 500
    body = response.json()
    assert_problem(body, 500, "internal_error")
    assert body["request_id"] == "trace-123"
    assert "secret internal" not in response.text and "Traceback" not in response.text


async def test_request_id_is_echoed_or_generated(client: AsyncClient) -> None:
    given = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    generated = await client.get("/healthz", headers={"X-Request-ID": "bad id with spaces"})
    assert generated.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32


async def test_security_headers_present(client: AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in response.headers["content-security-policy"]


@pytest.mark.parametrize("origin", ["https://evil.example", "null"])
async def test_cors_never_echoes_unknown_origin(client: AsyncClient, origin: str) -> None:
    response = await client.options(
        "/api/v1/auth/login",
        headers={"Origin": origin, "Access-Control-Request-Method": "POST"},
    )
    assert response.headers.get("access-control-allow-origin") is None


async def test_cors_allows_configured_origin_with_credentials(client: AsyncClient) -> None:
    response = await client.options(
        "/api/v1/auth/login",
        headers={"Origin": "https://reader.example", "Access-Control-Request-Method": "POST"},
    )
    assert response.headers["access-control-allow-origin"] == "https://reader.example"
    assert response.headers["access-control-allow-credentials"] == "true"
