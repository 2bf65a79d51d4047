"""Settings: development secrets are generated once; production refuses unsafe values."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from app.core.config import ConfigError, Environment, MailerKind, Settings

STRONG = "Zq8-vN3rT7wK2mX9pL4sB6yH1cF5gJ0dA_eUiOo"
METRICS_TOKEN = "mT4-qW8zR2xV6nB0kJ5hG9cY"


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.production,
        "jwt_secret": STRONG,
        "database_url": "postgresql+asyncpg://u:p@db/broadsheet",
        "mailer": MailerKind.smtp,
        "stripe_secret_key": "sk_live_abc",
        "stripe_webhook_secret": "whsec_abc",
        "public_url": "https://www.example.com",
        "api_url": "https://api.example.com",
        "metrics_token": METRICS_TOKEN,
    }
    values.update(overrides)
    return Settings.model_validate(values)


def test_development_secret_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(env=Environment.development, var_dir=tmp_path).check()
    second = Settings(env=Environment.development, var_dir=tmp_path).check()
    assert len(first.jwt_secret) >= 32
    assert first.jwt_secret == second.jwt_secret
    assert (tmp_path / "jwt_secret").stat().st_mode & 0o077 == 0


def test_safe_production_settings_start() -> None:
    assert production().check().is_production


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"jwt_secret": ""}, "JWT_SECRET is not set"),
        ({"jwt_secret": "short-secret"}, "at least 32 bytes"),
        ({"jwt_secret": "a" * 40}, "weak"),
        ({"database_url": ""}, "DATABASE_URL"),
        ({"mailer": MailerKind.file}, "MAILER=file"),
        ({"stripe_secret_key": ""}, "local payment gateway"),
        ({"cors_origins": "*"}, "CORS_ORIGINS"),
        ({"cors_origins": "https://www.example.com,null"}, "CORS_ORIGINS may not be 'null'"),
        ({"jwt_secret": "changeme-changeme-changeme-123456"}, "JWT_SECRET is a development"),
        ({"jwt_secret": "abcdabcdabcdabcdabcdabcdabcdabcd"}, "JWT_SECRET is a development"),
        ({"jwt_secret": STRONG[:20] + "MySecretValue"}, "JWT_SECRET is a development"),
        ({"metrics_token": ""}, "METRICS_TOKEN is not set"),
        ({"metrics_token": "changeme-metrics-token-0"}, "METRICS_TOKEN must be a random"),
        ({"metrics_token": "mT4-qW8z"}, "METRICS_TOKEN must be a random"),
        ({"refresh_cookie_secure": False}, "REFRESH_COOKIE_SECURE=false"),
        ({"public_url": "http://www.example.com"}, "PUBLIC_URL must be an https"),
        ({"api_url": "http://api.example.com"}, "API_URL must be an https"),
        ({"stripe_api_base": "https://stripe.attacker.example"}, "STRIPE_API_BASE"),
        ({"stripe_webhook_secret": ""}, "STRIPE_WEBHOOK_SECRET is not set"),
        ({"stripe_secret_key": "sk_test_abc"}, "test-mode key"),
        (
            {"smtp_host": "smtp.example.com", "smtp_password": "pw", "smtp_tls": "none"},
            "plain text",
        ),
        ({"trusted_proxies": 1}, "PROXY_NETWORKS"),
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        production(**overrides).check()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "overrides",
    [
        {"docs_enabled": True},
        {"metrics_token": "", "metrics_public": True},
        {"stripe_secret_key": "sk_test_abc", "stripe_test_keys_allowed": True},
        {"smtp_host": "smtp.example.com", "smtp_password": "pw", "smtp_tls": "starttls"},
        {"smtp_host": "127.0.0.1", "smtp_password": "pw", "smtp_tls": "none"},
        {"smtp_host": "smtp.example.com", "smtp_tls": "none"},
        {"trusted_proxies": 1, "proxy_networks": "172.28.80.0/29, fd00:80::/64"},
    ],
)
def test_production_accepts_what_is_explicitly_allowed(overrides: dict[str, object]) -> None:
    assert production(**overrides).check().is_production


def test_docs_default_off_in_production_and_on_in_development(tmp_path: Path) -> None:
    assert production().check().docs_enabled is False
    assert Settings(env=Environment.development, var_dir=tmp_path).docs_enabled is True
    # On only by default (development settings moved to production) is not an explicit allow.
    moved = production(env=Environment.development).model_copy(
        update={"env": Environment.production}
    )
    with pytest.raises(ConfigError, match="DOCS_ENABLED=true"):
        moved.check()


def test_environment_sets_docs_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROADSHEET_ENV", "production")
    assert Settings().docs_enabled is False
    monkeypatch.setenv("BROADSHEET_DOCS_ENABLED", "true")
    settings = Settings()
    assert settings.docs_enabled
    assert "docs_enabled" in settings.model_fields_set


@pytest.mark.parametrize(
    ("storage", "workers", "refused"),
    [
        ("memory://", 1, False),
        ("memory://", 4, True),
        ("async+memory://", 2, True),
        ("redis://redis:6379", 4, False),
    ],
)
def test_production_refuses_per_process_limits_with_several_workers(
    storage: str, workers: int, refused: bool
) -> None:
    settings = production(rate_limit_storage=storage).check()
    if refused:
        with pytest.raises(ConfigError, match=f"with {workers} workers") as info:
            settings.check_serving(workers)
        assert "\n" not in str(info.value)
    else:
        settings.check_serving(workers)
    # Outside production a developer may run several workers on memory://.
    Settings(env=Environment.test, jwt_secret=STRONG, rate_limit_storage=storage).check_serving(
        workers
    )


def _serve(monkeypatch: pytest.MonkeyPatch, args: list[str], **env: str) -> tuple[int, str]:
    from typer.testing import CliRunner

    from app.cli import app
    from app.core.config import get_settings

    values = {
        "BROADSHEET_ENV": "production",
        "BROADSHEET_JWT_SECRET": STRONG,
        "BROADSHEET_DATABASE_URL": "postgresql+asyncpg://u:p@db/broadsheet",
        "BROADSHEET_MAILER": "smtp",
        "BROADSHEET_STRIPE_SECRET_KEY": "sk_live_abc",
        "BROADSHEET_STRIPE_WEBHOOK_SECRET": "whsec_abc",
        "BROADSHEET_PUBLIC_URL": "https://www.example.com",
        "BROADSHEET_API_URL": "https://api.example.com",
        "BROADSHEET_METRICS_TOKEN": METRICS_TOKEN,
        **env,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    # A port already taken: if the command ever got as far as serving, it fails at once.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        try:
            result = CliRunner().invoke(app, ["serve", "--port", port, *args])
        finally:
            get_settings.cache_clear()
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "env"),
    [(["--workers", "3"], {}), ([], {"BROADSHEET_WEB_WORKERS": "3"})],
)
def test_serve_refuses_memory_limits_with_several_workers_in_production(
    monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]
) -> None:
    code, output = _serve(monkeypatch, args, **env)
    assert code == 2
    assert "refusing to start: BROADSHEET_RATE_LIMIT_STORAGE=memory:// with 3 workers" in output


def test_short_secret_refused_outside_production_too(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        Settings(env=Environment.test, jwt_secret="x" * 31, var_dir=tmp_path).check()


def test_environment_variables_and_lists_are_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("BROADSHEET_CORS_ORIGINS", "https://a.example/, https://b.example")
    monkeypatch.setenv("BROADSHEET_MAX_BODY_BYTES", "2048")
    settings = Settings(var_dir=tmp_path)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.max_body_bytes == 2048
    assert settings.resolved_database_url.endswith("broadsheet.db")


def test_cli_refuses_to_start_in_production_with_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from app.cli import app
    from app.core.config import get_settings

    monkeypatch.setenv("BROADSHEET_ENV", "production")
    monkeypatch.delenv("BROADSHEET_JWT_SECRET", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "refusing to start" in result.output
