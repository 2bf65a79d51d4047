"""Health, readiness, metrics and the offline docs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from httpx import ASGITransport, AsyncClient
from opentelemetry import trace

from app.core.migrate import code_heads, downgrade, upgrade
from app.main import create_app
from app.ops.service import SCHEMA_HEADS
from tests.conftest import make_settings
from tests.smtp import SmtpSink


async def test_healthz_and_readyz(client: AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


async def test_readyz_is_503_when_database_unreachable(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    missing = tmp_path / "no-such-dir" / "db.sqlite"
    app = create_app(make_settings(f"sqlite+aiosqlite:///{missing}", tmp_path, smtp_sink.port))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        response = await http.get("/readyz")
    await app.state.db.dispose()
    assert response.status_code == 503
    assert response.json()["code"] == "not_ready"


async def test_readyz_is_503_when_migrations_are_behind(
    tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'behind.db'}"
    # Alembic's env runs its own event loop, so it goes to a thread from inside a test's loop.
    await anyio.to_thread.run_sync(upgrade, url)
    await anyio.to_thread.run_sync(downgrade, url, "base")
    app = create_app(make_settings(url, tmp_path, smtp_sink.port))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        response = await http.get("/readyz")
    await app.state.db.dispose()
    assert response.status_code == 503


def test_readiness_expects_the_heads_of_the_migrations_shipped() -> None:
    assert code_heads() == SCHEMA_HEADS


def test_the_api_loads_without_alembic() -> None:
    # Alembic was ~7 MB of every API worker's memory; only migrations need it.
    check = "import sys, app.main; print(sorted(m for m in sys.modules if m.startswith('alembic')))"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_metrics_count_requests_per_route_template(client: AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/api/v1/nothing-here")
    text = (await client.get("/metrics")).text
    assert 'broadsheet_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert 'route="<unmatched>",status="404"' in text
    assert "broadsheet_http_request_duration_seconds_bucket" in text


async def test_metrics_token_when_configured(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    app = create_app(make_settings(database_url, tmp_path, smtp_sink.port, metrics_token="m" * 20))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        denied = await http.get("/metrics")
        allowed = await http.get("/metrics", headers={"Authorization": "Bearer " + "m" * 20})
    await app.state.db.dispose()
    assert denied.status_code == 401
    assert allowed.status_code == 200


async def test_docs_are_served_without_a_cdn(client: AsyncClient) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text.split("openapi")[0]
    asset = await client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000
    redoc = await client.get("/redoc")
    assert "/static-offline-docs/redoc.standalone.js" in redoc.text
    assert (await client.get("/openapi.json")).json()["info"]["title"] == "Broadsheet"


async def test_docs_can_be_turned_off(
    database_url: str, tmp_path: Path, smtp_sink: SmtpSink
) -> None:
    app = create_app(make_settings(database_url, tmp_path, smtp_sink.port, docs_enabled=False))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        assert (await http.get("/docs")).status_code == 404
        assert (await http.get("/redoc")).status_code == 404
    await app.state.db.dispose()


@pytest.mark.parametrize("enabled", [False, True])
async def test_fastapi_telemetry_only_when_asked_for(
    enabled: bool,
    database_url: str,
    tmp_path: Path,
    smtp_sink: SmtpSink,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # FastAPI looks for a configured tracer provider on each request while its telemetry is
    # on; off (the default), a request never asks.
    asked: list[int] = []
    real = trace.get_tracer_provider

    def counted() -> trace.TracerProvider:
        asked.append(1)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counted)
    settings = make_settings(database_url, tmp_path, smtp_sink.port, opentelemetry=enabled)
    app = create_app(settings)
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        assert (await http.get("/healthz")).status_code == 200
    await app.state.db.dispose()
    assert bool(asked) is enabled
