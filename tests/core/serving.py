"""Real processes for the deployment tests: the API served by `broadsheet serve`, nginx, and
finding the outside tools they need (a missing one fails under CI=true, never skips)."""

from __future__ import annotations

import http.client
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET

# Only a guard against a process that never comes up; no test asserts on it.
STARTUP_DEADLINE_SECONDS = 90.0


def tool(env_var: str, names: tuple[str, ...], script: str) -> str:
    """Give back the path of an outside tool, from `env_var` or the PATH; skip (fail in CI)."""
    found = os.environ.get(env_var) or next(filter(None, map(shutil.which, names)), None)
    if not found:
        for name in names:
            if Path("/usr/sbin", name).is_file():
                found = str(Path("/usr/sbin", name))
    if found:
        return found
    reason = f"{names[0]} is not available: run the tests under {script} (make test does)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def setting(env_var: str, script: str) -> str:
    """Give back a value a wrapper script exports; skip without it (fail in CI)."""
    value = os.environ.get(env_var)
    if value:
        return value
    reason = f"{env_var} is not set: run the tests under {script} (make test does)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def free_port() -> int:
    """Give back a free loopback port below the ephemeral range, for a server to come.

    An ephemeral port is the wrong kind: while the server starts, the probe's own connection
    may be given that very port as its source and connect to itself (TCP simultaneous open),
    holding the port the server then fails to bind.
    """
    low = _ephemeral_start()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)  # noqa: S311 - not a secret
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def request(
    port: int,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    source: str = "127.0.0.1",
) -> tuple[int, dict[str, str], bytes]:
    """Send one HTTP/1.1 request from `source` and give back status, headers and body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read()
    finally:
        conn.close()


def api_environment(database_url: str, var_dir: Path, **overrides: str) -> dict[str, str]:
    """Give back a process environment for the API: this test's database, nothing inherited."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BROADSHEET_")}
    env.update(
        BROADSHEET_ENV="test",
        BROADSHEET_DATABASE_URL=database_url,
        BROADSHEET_VAR_DIR=str(var_dir),
        BROADSHEET_JWT_SECRET=TEST_SECRET,
        BROADSHEET_MAILER="file",
        BROADSHEET_EMBEDDED_WORKER="false",
        BROADSHEET_LOG_LEVEL="WARNING",
        BROADSHEET_PASSWORD_TIME_COST="2",
        BROADSHEET_PASSWORD_MEMORY_KIB="19456",
        BROADSHEET_PASSWORD_PARALLELISM="1",
    )
    env.update(overrides)
    return env


@contextmanager
def running(command: list[str], env: dict[str, str], cwd: Path, port: int) -> Iterator[int]:
    """Run `command` until the block ends, once something answers HTTP on `port`."""
    log = (cwd / f"process-{port}.log").open("wb")
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_serving(process, port, cwd / f"process-{port}.log")
        yield port
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _wait_until_serving(process: subprocess.Popen[bytes], port: int, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"process on port {port} exited: {log.read_text(errors='replace')}")
        try:
            request(port, "GET", "/healthz")
            return
        except (OSError, http.client.HTTPException):
            # Connecting to a port in the ephemeral range before the server listens can
            # connect the socket to itself (TCP simultaneous open): it echoes the request.
            time.sleep(0.1)
    pytest.fail(f"nothing answered on port {port}: {log.read_text(errors='replace')}")


@contextmanager
def api_process(env: dict[str, str], cwd: Path) -> Iterator[int]:
    """Serve the API with `broadsheet serve` (one uvicorn worker) on a free port."""
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1"]
    with running([*command, "--port", str(port), "--workers", "1"], env, cwd, port):
        yield port
