"""The benchmark seeder fills a database the app can serve (a tiny smoke run; no timing)."""

from __future__ import annotations

from pathlib import Path

from httpx import ASGITransport, AsyncClient

from app.main import create_app
from bench.seed import seed
from bench.servers import parse_wrk
from tests.conftest import make_settings
from tests.smtp import SmtpSink


async def test_seeded_archive_is_served(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bench.db'}"
    report = await seed(url, 60, 40)
    assert report["articles"] == 60
    app = create_app(make_settings(url, tmp_path / "var", smtp_sink.port))
    async with AsyncClient(transport=ASGITransport(app=app), base_url="https://api.test") as http:
        page = (await http.get("/api/v1/articles?limit=100")).json()
        article = (await http.get("/api/v1/articles/bench-article-9")).json()
        found = (await http.get("/api/v1/search?q=harbour")).json()
    await app.state.db.dispose()
    assert len(page["items"]) == 60
    assert {i["visibility"] for i in page["items"]} == {"public", "members", "paid"}
    assert article["word_count"] >= 800
    assert found["items"]


def test_wrk_output_is_parsed() -> None:
    sample = """
  1 threads and 64 connections
  Latency Distribution
     50%    3.10ms
     75%    4.00ms
     90%    5.00ms
     99%    1.20s
  100 requests in 1.00s, 1.00MB read
  Non-2xx or 3xx responses: 4
Requests/sec:   1234.56
"""
    assert parse_wrk(sample) == {
        "requests_per_s": 1234.6,
        "timeouts": 0,
        "p50_ms": 3.1,
        "p99_ms": 1200.0,
        "errors": 4,
    }
    with_timeouts = sample + "  Socket errors: connect 0, read 0, write 0, timeout 7\n"
    assert parse_wrk(with_timeouts)["timeouts"] == 7
