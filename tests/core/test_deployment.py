"""The compose file has the production shape and holds no secret values."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = re.compile(r"(SECRET|PASSWORD|KEY|TOKEN)", re.IGNORECASE)
FROM_ENV = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_database_api_worker_and_mailcatcher() -> None:
    services = compose()["services"]
    assert {"db", "api", "worker", "mailcatcher"} <= set(services)
    assert services["db"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["db"]
    assert any("pgdata" in volume for volume in services["db"]["volumes"])
    assert services["api"]["ports"] == ["8000:8000"]
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["worker"]["command"] == ["broadsheet", "worker"]


def _secret_values(node: Any, path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{path}.{key}"
            if isinstance(value, str | int) and SECRET_NAMES.search(str(key)):
                found.append((here, str(value)))
            else:
                found.extend(_secret_values(value, here))
    elif isinstance(node, list):
        for item in node:
            found.extend(_secret_values(item, path))
    return found


def test_compose_writes_no_secret_value() -> None:
    pairs = _secret_values(compose())
    assert pairs, "expected secret settings to be wired from the environment"
    for where, value in pairs:
        stripped = value.strip()
        assert stripped == "" or FROM_ENV.match(stripped), f"{where} holds a literal: {value!r}"
    # The database URL carries the password only as an environment reference.
    url = compose()["x-broadsheet-env"]["BROADSHEET_DATABASE_URL"]
    assert "${POSTGRES_PASSWORD" in url


def test_no_secret_or_database_files_are_tracked() -> None:
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    bad = [
        p for p in tracked if p == ".env" or p.endswith((".db", ".sqlite3")) or p.startswith("var/")
    ]
    assert bad == []
