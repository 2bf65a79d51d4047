"""Contract fuzzing: schemathesis drives every documented operation of a real server (uvicorn
over this run's database, seeded with the demo publication) as an anonymous caller, a reader
and an admin. No answer may be a 5xx, and every answer must match what /openapi.json says:
its status code, its content type and its schema.

The number of examples per operation is bounded (BROADSHEET_CONTRACT_EXAMPLES, default 12),
so the run stays within a few minutes; the seed is printed for a rerun.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from app.core.migrate import upgrade
from tests.conftest import create_postgres_database, postgres_admin_url
from tests.core.serving import api_environment, api_process, request

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)
# What would end the run's own account, and nothing else (operation ids).
EXCLUDED = ["delete_me_api_v1_me_delete"]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[str, str]]]:
    """A seeded server and an access token per role."""
    work = tmp_path_factory.mktemp("contract")
    admin_url = postgres_admin_url()
    if admin_url:
        url = anyio.run(create_postgres_database, admin_url)
    else:
        url = f"sqlite+aiosqlite:///{work / 'contract.db'}"
    upgrade(url)
    env = api_environment(url, work / "var", BROADSHEET_RESPONSE_CACHE_SECONDS="0")
    seeded = subprocess.run(
        [sys.executable, "-m", "app.cli", "seed-demo"],
        env=env, cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "demo admin" in seeded.stdout
    password = (work / "var" / "demo-admin-password").read_text().strip()
    with api_process(env, work) as port:
        admin: dict[str, object] = {"email": "admin@broadsheet.example"}
        reader: dict[str, object] = {"email": "fuzzing-reader@example.com", "accept_terms": True}
        tokens = {
            "admin": _token(port, "/api/v1/auth/login", admin, password),
            "reader": _token(port, "/api/v1/auth/signup", reader, "reader password 123"),
        }
        yield port, tokens


def _token(port: int, path: str, fields: dict[str, object], password: str) -> str:
    body = json.dumps({**fields, "password": password}).encode()
    status, _, answer = request(
        port, "POST", path, body=body, headers={"Content-Type": "application/json"}
    )
    assert status in (200, 201), answer
    return str(json.loads(answer)["access_token"])


@pytest.mark.parametrize("role", ["anonymous", "reader", "admin"])
def test_every_operation_keeps_its_documented_contract(
    served: tuple[int, dict[str, str]], role: str, tmp_path: Path
) -> None:
    port, tokens = served
    examples = os.environ.get("BROADSHEET_CONTRACT_EXAMPLES", "12")
    command = [
        str(Path(sys.executable).with_name("schemathesis")), "run",
        f"http://127.0.0.1:{port}/openapi.json",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", examples,
        "--workers", "1",
        "--no-color",
        "--generation-database", "none",
        "--report", "junit", "--report-dir", str(tmp_path),
    ]  # fmt: skip
    for operation in EXCLUDED:
        command += ["--exclude-operation-id", operation]
    if role in tokens:
        command += ["--header", f"Authorization: Bearer {tokens[role]}"]
    ran = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, check=False)
    report = ran.stdout.split("= FAILURES =", 1)[-1]
    assert ran.returncode == 0, report[:30000] + ran.stderr[-3000:]
