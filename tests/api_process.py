"""The API served by uvicorn in a process of its own, for faults one process cannot fake.

Root ignores file permissions, and tests run as root in CI. There the server runs as root
without the capabilities that override them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH,
CAP_FOWNER), so a file made read-only is read-only to it. Dropping to another user instead
would need the interpreter to be readable by that user, which a virtualenv under /root is not.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.core.serving import free_port

ROOT = Path(__file__).resolve().parents[1]
_DROP_PERMISSION_OVERRIDES = [
    "setpriv",
    "--bounding-set",
    "-dac_override,-dac_read_search,-fowner",
    "--",
]
_STARTUP_LIMIT_SECONDS = 60.0


def permission_bound_prefix() -> list[str]:
    """Give back the command prefix under which file permissions bind (empty unless root)."""
    return _DROP_PERMISSION_OVERRIDES if os.geteuid() == 0 else []


@contextlib.contextmanager
def api_process(settings: dict[str, str], log_path: Path) -> Iterator[str]:
    """Serve the app built from BROADSHEET_* `settings`; yield its base URL, stop it after."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("BROADSHEET_")}
    env.update({f"BROADSHEET_{key.upper()}": value for key, value in settings.items()})
    command = [
        *permission_bound_prefix(),
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)  # noqa: S603
        try:
            base_url = f"http://127.0.0.1:{port}"
            _wait_until_serving(process, base_url, log_path)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_serving(process: subprocess.Popen[bytes], base_url: str, log_path: Path) -> None:
    deadline = time.monotonic() + _STARTUP_LIMIT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the API exited at start-up:\n{log_path.read_text()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/healthz", timeout=1.0).status_code == 200:
                return
        time.sleep(0.05)
    raise RuntimeError(f"the API did not start serving:\n{log_path.read_text()}")
