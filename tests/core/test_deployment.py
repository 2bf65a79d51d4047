"""The compose file has the production shape (a proxy in front, Redis for shared limits) and
holds no secret values; the image starts in production."""

from __future__ import annotations

import ipaddress
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from app.admin.members_router import MAX_IMPORT_BYTES
from app.core.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SECRET_NAMES = re.compile(r"(SECRET|PASSWORD|KEY|TOKEN)", re.IGNORECASE)
FROM_ENV = re.compile(r"^\$\{[A-Z0-9_]+(:?[-?][^}]*)?\}$")


def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert isinstance(data, dict)
    return data


def test_compose_has_proxy_database_redis_api_worker_and_mailcatcher() -> None:
    services = compose()["services"]
    assert {"proxy", "db", "redis", "api", "worker", "mailcatcher"} <= set(services)
    assert services["db"]["image"].startswith("postgres:16")
    assert "healthcheck" in services["db"]
    assert any("pgdata" in volume for volume in services["db"]["volumes"])
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["api"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["worker"]["command"] == ["broadsheet", "worker"]
    assert "healthcheck" in services["redis"]


def test_only_the_proxy_is_published_and_the_api_only_to_it() -> None:
    services = compose()["services"]
    published = {
        name
        for name, svc in services.items()
        if svc.get("ports") and "dev" not in svc.get("profiles", [])
    }
    assert published == {"proxy"}
    assert "ports" not in services["api"]
    assert services["api"]["expose"] == ["8000"]
    # The proxy shares a network with the API alone, not with the database or Redis.
    assert set(services["proxy"]["networks"]) == {"edge"}
    assert set(services["api"]["networks"]) == {"default", "edge"}
    for name in ("db", "redis", "worker"):
        assert "networks" not in services[name], name


def test_forwarded_for_is_believed_only_from_the_proxy_address() -> None:
    data = compose()
    env = data["x-broadsheet-env"]
    assert env["BROADSHEET_TRUSTED_PROXIES"] == "1"
    proxy_address = data["services"]["proxy"]["networks"]["edge"]["ipv4_address"]
    assert env["BROADSHEET_PROXY_NETWORKS"] == f"{proxy_address}/32"
    address = ipaddress.ip_address(_interpolate(proxy_address))
    subnet = data["networks"]["edge"]["ipam"]["config"][0]["subnet"]
    assert address in ipaddress.ip_network(_interpolate(subnet))


def test_rate_limits_are_shared_through_redis() -> None:
    env = compose()["x-broadsheet-env"]
    assert env["BROADSHEET_RATE_LIMIT_STORAGE"].startswith("redis://redis:6379")


def test_proxy_mounts_the_shipped_config_and_passes_to_the_exposed_port() -> None:
    proxy = compose()["services"]["proxy"]
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    assert "set $broadsheet_api http://api:8000;" in config
    # Overwritten with the peer, never appended to what the client sent.
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in config
    assert "proxy_add_x_forwarded_for" not in config
    assert re.search(r"^\s*large_client_header_buffers\s+\d+\s+\d+k;", config, re.M)
    assert re.search(r"^\s*client_header_buffer_size\s+\d+k;", config, re.M)


def test_proxy_body_caps_are_the_api_caps() -> None:
    config = (ROOT / "deploy" / "nginx.conf").read_text()
    caps = re.findall(r"client_max_body_size\s+(\d+)m;", config)
    assert [int(mb) * 1024 * 1024 for mb in caps] == [
        Settings.model_fields["max_body_bytes"].default,
        MAX_IMPORT_BYTES,
    ]
    import_block = config.split("location = /api/v1/admin/members/import", 1)[1].split("}", 1)[0]
    assert "client_max_body_size 20m;" in import_block


SAMPLE_VALUES = {
    "POSTGRES_PASSWORD": "pg-Zq8vN3rT7wK2mX9pL4sB",
    "BROADSHEET_JWT_SECRET": "Zq8-vN3rT7wK2mX9pL4sB6yH1cF5gJ0dA_eUiOo",
    "BROADSHEET_METRICS_TOKEN": "mT4-qW8zR2xV6nB0kJ5hG9cY",
    "BROADSHEET_PUBLIC_URL": "https://www.example.com",
    "BROADSHEET_API_URL": "https://api.example.com",
    "BROADSHEET_STRIPE_SECRET_KEY": "sk_live_abc",
    "BROADSHEET_STRIPE_WEBHOOK_SECRET": "whsec_abc",
}
_REFERENCE = re.compile(r"\$\{([A-Z0-9_]+)(?::([-?])([^}]*))?\}")


def _interpolate(value: str) -> str:
    """Give back a compose value as compose would, with the sample .env's values."""

    def one(match: re.Match[str]) -> str:
        name, kind, rest = match.groups()
        if name in SAMPLE_VALUES:
            return SAMPLE_VALUES[name]
        assert kind == "-", f"{name} is required but has no sample value"
        return rest

    return _REFERENCE.sub(one, value)


def test_compose_settings_pass_the_production_checks() -> None:
    data = compose()
    api = data["services"]["api"]["environment"]
    values = {
        name.removeprefix("BROADSHEET_").lower(): _interpolate(str(value))
        for name, value in {**data["x-broadsheet-env"], **api}.items()
        if name != "<<"
    }
    settings = Settings.model_validate(values).check()
    assert settings.is_production
    assert not settings.docs_enabled
    settings.check_serving(settings.web_workers)
    assert settings.web_workers > 1


def test_image_defaults_to_production_and_serves_from_settings() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^ENV .*\bBROADSHEET_ENV=production\b", dockerfile, re.M)
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    # The worker count comes from BROADSHEET_WEB_WORKERS, which `serve` checks against the store.
    assert "broadsheet serve" in cmd and "--workers" not in cmd


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
        p
        for p in tracked
        if p == ".env"
        or p.endswith((".db", ".sqlite3", ".pem", ".key"))
        or p.startswith(("var/", "deploy/certs/"))
    ]
    assert bad == []
