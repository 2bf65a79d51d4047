"""The servers and the load of the benchmarks: uvicorn serving an app factory from a
checkout, wrk driving it from a separate process on 127.0.0.1 (installed from Debian if
missing), and what the server's processes hold in memory."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from app.cli import EVENT_LOOP

ROOT = Path(__file__).resolve().parents[1]
LUA = ROOT / "bench" / "lua" / "paths.lua"
SECRET = "bench-secret-" + "s" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is needed: apt-get install wrk")
    return found


def app_env(url: str, workdir: Path) -> dict[str, str]:
    """The app's settings in every benchmark: the database at `url`, files under `workdir`,
    no embedded worker, no login limit in the way of the load."""
    return {
        "BROADSHEET_ENV": "development",
        "BROADSHEET_DATABASE_URL": url,
        "BROADSHEET_JWT_SECRET": SECRET,
        "BROADSHEET_VAR_DIR": str(workdir / "var"),
        "BROADSHEET_EMBEDDED_WORKER": "false",
        "BROADSHEET_LOG_LEVEL": "WARNING",
        "BROADSHEET_LOGIN_RATE_LIMIT": "100000/minute",
        "BROADSHEET_DB_POOL_SIZE": "20",
    }


def serve(
    factory: str,
    port: int,
    workers: int,
    env: dict[str, str],
    loop: str = EVENT_LOOP,
    checkout: Path = ROOT,
) -> subprocess.Popen[bytes]:
    """Serve `factory` from `checkout` (this one unless told) and wait until it answers."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            factory,
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            str(workers),
            "--loop",
            loop,
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=checkout,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if (
                httpx.get(
                    f"http://127.0.0.1:{port}/ping"
                    if "bare" in factory
                    else f"http://127.0.0.1:{port}/healthz",
                    timeout=1,
                ).status_code
                == 200
            ):
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(
        f"{factory} did not start: {process.stderr.read().decode() if process.stderr else ''}"
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()


def rss_mb(process: subprocess.Popen[bytes], field: str) -> list[float]:
    """A memory field of the server's processes (VmRSS now, VmHWM the peak), in MB."""
    out = []
    for pid in [process.pid, *_children(process.pid)]:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(rf"{field}:\s+(\d+) kB", status)
        if match:
            out.append(round(int(match.group(1)) / 1024, 1))
    return out


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _wrk_command(port: int, listing: str, seconds: int, connections: int) -> list[str]:
    return [
        ensure_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        listing,
    ]


def wrk(
    port: int,
    paths: list[str],
    *,
    duration: int,
    connections: int,
    auth: str | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    """Measure `paths` for `duration` seconds, after a 2 s warm-up (caches, connections)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as handle:
        handle.write("\n".join(paths))
        listing = handle.name
    env = {**os.environ, "BENCH_AUTH": auth or ""}
    if warmup:
        subprocess.run(
            _wrk_command(port, listing, 2, connections),
            env=env,
            capture_output=True,
            check=False,
        )
    result = subprocess.run(
        _wrk_command(port, listing, duration, connections),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    os.unlink(listing)
    return parse_wrk(result.stdout)


def prime(port: int, paths: list[str], auth: str | None = None, parallel: int = 16) -> None:
    """Request every path twice, so a cached scenario measures the cache, not the renders
    that fill it (wrk's random picks leave part of 5,000 slugs unrendered after its warm-up,
    the 60 s TTL empties the cache between scenarios, and an article's answer is kept from
    its second miss on). The uncached twins show the misses."""

    async def walk() -> None:
        headers = {"Authorization": auth} if auth else {}
        queue = [*paths, *paths]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:

            async def worker() -> None:
                while queue:
                    await http.get(queue.pop(), headers=headers)

            await asyncio.gather(*(worker() for _ in range(parallel)))

    asyncio.run(walk())


def _ms(value: str) -> float:
    number, unit = re.match(r"([\d.]+)(\w+)", value).groups()  # type: ignore[union-attr]
    return round(float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60000}[unit], 3)


def parse_wrk(output: str) -> dict[str, Any]:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"50%\s+([\d.]+\w+)", output)
    p99 = re.search(r"99%\s+([\d.]+\w+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non2xx.group(1)) if non2xx else 0
    timeouts = 0
    if sockets:
        errors += sum(int(x) for x in sockets.groups())
        timeouts = int(sockets.group(4))
    return {
        "requests_per_s": round(rps, 1),
        "timeouts": timeouts,
        "p50_ms": _ms(p50.group(1)) if p50 else None,
        "p99_ms": _ms(p99.group(1)) if p99 else None,
        "errors": errors,
    }
