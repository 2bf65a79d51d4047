"""The shipped nginx config, checked by nginx itself and run for real in front of the API:
X-Forwarded-For overwritten, header and body sizes capped, /metrics kept inside."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.admin.members_router import MAX_IMPORT_BYTES
from app.core.config import Settings
from tests.conftest import _wipe
from tests.core.serving import api_environment, api_process, free_port, request, running, tool

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "deploy" / "nginx.conf"
UPSTREAM = "set $broadsheet_api http://api:8000;"
LISTEN = "listen 80;"
# Temporary files go to the test's folder, not the packaged nginx's own.
TEMP_PATHS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


@pytest.fixture(scope="module")
def nginx() -> str:
    return tool("BROADSHEET_TEST_NGINX", ("nginx",), "scripts/with-nginx.sh")


def test_shipped_config_passes_nginx_own_check(nginx: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [nginx, "-t", "-q", "-c", str(CONFIG), "-p", str(tmp_path), "-e", "stderr"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _render(api_port: int, proxy_port: int, folder: Path) -> Path:
    """Give back the shipped config pointed at this test's API and port (and nothing else)."""
    text = CONFIG.read_text()
    assert text.count(UPSTREAM) == 1 and text.count(LISTEN) == 1
    text = text.replace(UPSTREAM, f"set $broadsheet_api http://127.0.0.1:{api_port};")
    text = text.replace(LISTEN, f"listen 127.0.0.1:{proxy_port};")
    temp = "".join(f"    {name}_temp_path {folder / name};\n" for name in TEMP_PATHS)
    text = text.replace("http {\n", "http {\n" + temp, 1)
    if os.geteuid() == 0:
        # Workers keep root's identity, so they can use the test's private temp folder.
        text = "user root;\n" + text
    rendered = folder / "nginx.conf"
    rendered.write_text(text)
    return rendered


@pytest.fixture(scope="module")
def stack(
    nginx: str, database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[int, int]]:
    """The API behind the shipped proxy config, once for this module: (proxy port, API port)."""
    tmp_path = tmp_path_factory.mktemp("proxy")
    env = api_environment(
        database_url,
        tmp_path / "var",
        BROADSHEET_TRUSTED_PROXIES="1",
        BROADSHEET_PROXY_NETWORKS="127.0.0.1/32",
        BROADSHEET_LOGIN_RATE_LIMIT="3/hour",
    )
    try:
        with api_process(env, tmp_path) as api_port:
            proxy_port = free_port()
            config = _render(api_port, proxy_port, tmp_path)
            command = [nginx, "-c", str(config), "-p", str(tmp_path), "-e", "stderr"]
            command += ["-g", f"daemon off; pid {tmp_path / 'nginx.pid'};"]
            with running(command, os.environ.copy(), tmp_path, proxy_port):
                yield proxy_port, api_port
    finally:
        asyncio.run(_wipe(database_url))


def _failed_logins(port: int, source: str, forwarded: list[str]) -> list[int]:
    statuses = []
    for i, hop in enumerate(forwarded):
        body = json.dumps({"email": f"px{i}@example.org", "password": "wrong password!"})
        headers = {"Content-Type": "application/json", "X-Forwarded-For": hop}
        status, _, _ = request(
            port, "POST", "/api/v1/auth/login", body=body.encode(), headers=headers, source=source
        )
        statuses.append(status)
    return statuses


def test_spoofed_forwarded_for_does_not_beat_the_limit(stack: tuple[int, int]) -> None:
    proxy, api = stack
    spoofed = [f"203.0.113.{i}" for i in range(5)]
    # Through the proxy: it writes the peer it saw over whatever the reader sent.
    assert _failed_logins(proxy, "127.0.0.2", spoofed) == [401, 401, 401, 429, 429]
    # Straight to the API from a peer outside BROADSHEET_PROXY_NETWORKS: the header is ignored.
    assert _failed_logins(api, "127.0.0.3", spoofed) == [401, 401, 401, 429, 429]
    # Another reader through the proxy is counted apart.
    assert _failed_logins(proxy, "127.0.0.4", spoofed[:1]) == [401]


def test_oversized_headers_stop_at_the_proxy(stack: tuple[int, int]) -> None:
    proxy, _ = stack
    assert request(proxy, "GET", "/healthz", headers={"X-Pad": "a" * 4000})[0] == 200
    status, headers, body = request(proxy, "GET", "/healthz", headers={"X-Pad": "a" * 20_000})
    assert status == 431
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["code"] == "headers_too_large"


def _declared_body_status(port: int, path: str, length: int) -> tuple[int, bytes]:
    """Announce a body of `length` bytes, send none, and read what comes back."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: test\r\nContent-Type: text/csv\r\n"
        f"Content-Length: {length}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as conn:
        conn.sendall(head.encode())
        # Read the answer by its length: nginx keeps the socket open a while for the body.
        answer = conn.makefile("rb")
        status = int(answer.readline().split()[1])
        length = 0
        while (line := answer.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        return status, answer.read(length)


def test_body_caps_match_the_api(stack: tuple[int, int]) -> None:
    proxy, _ = stack
    default_cap = Settings.model_fields["max_body_bytes"].default
    over = default_cap + 1
    status, body = _declared_body_status(proxy, "/api/v1/auth/login", over)
    assert status == 413
    assert json.loads(body)["code"] == "payload_too_large"
    # The member import may be larger: such a body goes through (and meets the API's auth).
    status, _ = request(
        proxy, "POST", "/api/v1/admin/members/import", body=b"e" * over, headers={}
    )[:2]
    assert status == 401
    assert (
        _declared_body_status(proxy, "/api/v1/admin/members/import", MAX_IMPORT_BYTES + 1)[0] == 413
    )


def test_metrics_are_not_served_through_the_proxy(stack: tuple[int, int]) -> None:
    proxy, api = stack
    status, headers, body = request(proxy, "GET", "/metrics")
    assert status == 404
    assert json.loads(body)["code"] == "not_found"
    # The API itself still answers on the inside network.
    assert request(api, "GET", "/metrics")[0] == 200
