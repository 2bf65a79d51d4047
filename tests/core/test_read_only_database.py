"""A server started on a read-only SQLite database answers 503 and says it is not ready, then
recovers by itself once the files are writable again (no restart)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.core.migrate import upgrade
from tests.api_process import api_process
from tests.conftest import TEST_SECRET, postgres_admin_url

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.skipif(
    postgres_admin_url() is not None, reason="SQLite's file permissions (runs in the SQLite pass)"
)


def set_writable(database: Path, *, writable: bool, directory: bool) -> None:
    """Make the database's files (and, with `directory`, their directory) writable or not."""
    for path in database.parent.glob(database.name + "*"):
        path.chmod(0o644 if writable else 0o444)
    if directory:
        database.parent.chmod(0o755 if writable else 0o555)


def sign_up(http: httpx.Client, email: str) -> httpx.Response:
    body = {"email": email, "password": PASSWORD, "accept_terms": True}
    return http.post("/api/v1/auth/signup", json=body)


def assert_database_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["code"] == "database_unavailable"
    assert int(response.headers["retry-after"]) > 0


@pytest.mark.parametrize("directory", [False, True], ids=["files", "files-and-directory"])
def test_a_read_only_database_is_503_and_the_same_server_recovers(
    tmp_path: Path, directory: bool
) -> None:
    database = tmp_path / "db" / "broadsheet.db"
    database.parent.mkdir()
    url = f"sqlite+aiosqlite:///{database}"
    upgrade(url)
    settings = {
        "env": "test",
        "database_url": url,
        "var_dir": str(tmp_path / "var"),
        "jwt_secret": TEST_SECRET,
        "embedded_worker": "false",
        "log_level": "WARNING",
        "password_time_cost": "2",
        "password_memory_kib": "19456",
        "password_parallelism": "1",
    }
    set_writable(database, writable=False, directory=directory)
    try:
        with (
            api_process(settings, tmp_path / "api.log") as base_url,
            httpx.Client(base_url=base_url, timeout=30) as http,
        ):
            refused = sign_up(http, "first@example.com")
            not_ready = http.get("/readyz")
            set_writable(database, writable=True, directory=directory)
            accepted = sign_up(http, "second@example.com")
            ready = http.get("/readyz")
            login = http.post(
                "/api/v1/auth/login", json={"email": "second@example.com", "password": PASSWORD}
            )
    finally:
        set_writable(database, writable=True, directory=directory)
    assert_database_unavailable(refused)
    assert not_ready.status_code == 503, not_ready.text
    assert not_ready.json()["code"] == "not_ready"
    assert accepted.status_code == 201, accepted.text
    assert ready.status_code == 200, ready.text
    assert login.status_code == 200, login.text
