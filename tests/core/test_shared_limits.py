"""Rate limits on Redis hold across API processes: the total counts, not each process's share."""

from __future__ import annotations

import asyncio
import json
import random
from contextlib import ExitStack
from pathlib import Path

import pytest

from app.core.config import Settings
from app.core.errors import RateLimited
from app.core.ratelimit import RateLimiter
from tests.conftest import _wipe
from tests.core.serving import api_environment, api_process, request, setting

REDIS_ENV = "BROADSHEET_TEST_REDIS_URL"


@pytest.fixture
def redis_url() -> str:
    return setting(REDIS_ENV, "scripts/with-redis.sh")


def test_failed_logins_alternated_between_two_processes_meet_one_limit(
    redis_url: str, database_url: str, tmp_path: Path
) -> None:
    env = api_environment(
        database_url,
        tmp_path / "var",
        BROADSHEET_RATE_LIMIT_STORAGE=redis_url,
        BROADSHEET_LOGIN_RATE_LIMIT="4/hour",
    )
    # A loopback address of its own, so a Redis kept from an earlier run holds no count for it.
    source = f"127.{random.randint(10, 250)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
    try:
        with ExitStack() as stack:
            ports = [stack.enter_context(api_process(env, tmp_path)) for _ in range(2)]
            statuses = []
            for i in range(6):
                body = json.dumps({"email": f"alt{i}@example.org", "password": "wrong password!"})
                status, _, _ = request(
                    ports[i % 2],
                    "POST",
                    "/api/v1/auth/login",
                    body=body.encode(),
                    headers={"Content-Type": "application/json"},
                    source=source,
                )
                statuses.append(status)
    finally:
        asyncio.run(_wipe(database_url))
    # Four failures in all, two per process, then both refuse.
    assert statuses == [401, 401, 401, 401, 429, 429]


async def test_limiter_on_redis_counts_and_refuses(redis_url: str) -> None:
    limiter = RateLimiter(Settings(rate_limit_storage=redis_url))
    key = f"test:{random.getrandbits(64):x}"
    await limiter.hit("2/hour", key)
    await limiter.hit("2/hour", key)
    with pytest.raises(RateLimited):
        await limiter.hit("2/hour", key)
    # A check counts nothing, so it refuses too while the window is full.
    with pytest.raises(RateLimited):
        await limiter.check("2/hour", key)
