"""Settings: development secrets are generated once; production refuses unsafe values."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import ConfigError, Environment, MailerKind, Settings

STRONG = "Zq8-vN3rT7wK2mX9pL4sB6yH1cF5gJ0dA_eUiOo"


def production(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "env": Environment.production,
        "jwt_secret": STRONG,
        "database_url": "postgresql+asyncpg://u:p@db/broadsheet",
        "mailer": MailerKind.smtp,
        "stripe_secret_key": "sk_live_abc",
        "stripe_webhook_secret": "whsec_abc",
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
    ],
)
def test_production_refuses_unsafe_settings(overrides: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError, match=reason) as info:
        production(**overrides).check()
    assert "\n" not in str(info.value)


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
