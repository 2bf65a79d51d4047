"""Settings: one typed object read from `BROADSHEET_*` environment variables and `.env`."""

from __future__ import annotations

import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

API_PREFIX = "/api/v1"
MIN_SECRET_BYTES = 32
# Values that ship in docs, compose files or examples; production must never run on them.
KNOWN_WEAK_SECRETS = frozenset({"changeme", "secret", "development", "dev-secret", "test-secret"})


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class MailerKind(StrEnum):
    file = "file"
    smtp = "smtp"


class SmtpTls(StrEnum):
    none = "none"
    starttls = "starttls"
    tls = "tls"


class ConfigError(RuntimeError):
    """The settings cannot run in this environment; the message is one line for the operator."""


class Settings(BaseSettings):
    """Everything Broadsheet can be told from the outside."""

    model_config = SettingsConfigDict(
        env_prefix="BROADSHEET_", env_file=".env", extra="ignore", validate_default=True
    )

    env: Environment = Environment.development
    database_url: str = ""
    var_dir: Path = Path("var")
    public_url: str = "http://127.0.0.1:8000"
    # Where this API itself is reached from outside (links to its own pages, e.g. local checkout).
    api_url: str = "http://127.0.0.1:8000"
    publication_name: str = "Broadsheet"
    publication_description: str = "An independent publication."
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    docs_enabled: bool = True
    metrics_token: str = ""
    embedded_worker: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_timeout: float = Field(default=10.0, gt=0)

    jwt_secret: str = ""
    jwt_algorithm: str = "HS256"
    jwt_issuer: str = "broadsheet"
    jwt_audience: str = "broadsheet-api"
    access_token_minutes: int = Field(default=15, ge=1, le=15)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    jwt_leeway_seconds: int = Field(default=10, ge=0, le=30)
    magic_link_minutes: int = Field(default=15, ge=1, le=60)
    password_reset_minutes: int = Field(default=60, ge=5, le=24 * 60)
    email_verify_hours: int = Field(default=48, ge=1)
    signup_open: bool = True
    # The automatic preview of a gated article without a paywall marker: at most this many
    # top-level blocks and characters of text (and never more than half of its text).
    preview_paragraphs: int = Field(default=3, ge=1, le=50)
    preview_max_chars: int = Field(default=1500, ge=100, le=20_000)
    # Reader answers are kept this long at most; staff writes and articles going live clear
    # them sooner (checked every response_cache_check_seconds), comment counts wait it out.
    response_cache_seconds: float = Field(default=60.0, ge=0, le=300)
    response_cache_check_seconds: float = Field(default=0.1, gt=0, le=5)
    response_cache_mb: int = Field(default=32, ge=1, le=1024)
    terms_version: str = "2026-01"
    privacy_version: str = "2026-01"
    refresh_cookie_secure: bool = True
    password_min_length: int = Field(default=10, ge=8)
    password_max_bytes: int = Field(default=4096, ge=64, le=65536)
    password_time_cost: int = Field(default=3, ge=2)
    password_memory_kib: int = Field(default=65536, ge=19456)
    password_parallelism: int = Field(default=2, ge=1)

    rate_limit_storage: str = "memory://"
    login_rate_limit: str = "10/15minutes"
    signup_rate_limit: str = "10/hour"
    email_rate_limit: str = "5/15minutes"
    trusted_proxies: int = Field(default=0, ge=0)

    mailer: MailerKind = MailerKind.file
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_tls: SmtpTls = SmtpTls.none
    smtp_timeout: float = 30.0
    mail_from: str = "Broadsheet <newsletter@localhost>"

    comment_rate_limit: str = "5/minute"
    comment_edit_minutes: int = Field(default=15, ge=0)
    comment_max_depth: int = Field(default=3, ge=0, le=10)
    send_rate: float = Field(default=0, ge=0)
    newsletter_batch_size: int = Field(default=100, ge=1, le=5000)
    newsletter_lease_seconds: int = Field(default=300, ge=1)
    newsletter_retry_base_seconds: float = Field(default=60, ge=0)
    newsletter_max_attempts: int = Field(default=8, ge=1)
    dkim_key_path: Path | None = None
    dkim_selector: str = ""
    dkim_domain: str = ""

    stripe_secret_key: str = ""
    stripe_webhook_secret: str = ""
    stripe_api_base: str = ""
    billing_grace_days: int = Field(default=7, ge=0, le=60)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @property
    def is_production(self) -> bool:
        return self.env is Environment.production

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite under `var_dir`."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.var_dir / 'broadsheet.db'}"

    def check(self) -> Settings:
        """Give back ready settings: fill development secrets, refuse unsafe production ones."""
        if self.is_production:
            _refuse_unsafe_production(self)
            return self
        if not self.jwt_secret:
            self.jwt_secret = _development_secret(self.var_dir / "jwt_secret")
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"BROADSHEET_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return self


def _refuse_unsafe_production(settings: Settings) -> None:
    secret = settings.jwt_secret
    if not secret:
        raise ConfigError("BROADSHEET_JWT_SECRET is not set; production needs a random secret")
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise ConfigError(f"BROADSHEET_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
    if secret.lower() in KNOWN_WEAK_SECRETS or len(set(secret)) < 8:
        raise ConfigError("BROADSHEET_JWT_SECRET is a development or trivially weak value")
    if not settings.database_url:
        raise ConfigError("BROADSHEET_DATABASE_URL is not set; production runs on PostgreSQL")
    if not settings.stripe_secret_key:
        raise ConfigError(
            "BROADSHEET_STRIPE_SECRET_KEY is not set; the local payment gateway is for development"
        )
    if settings.mailer is MailerKind.file:
        raise ConfigError("BROADSHEET_MAILER=file writes mail to disk; production needs smtp")
    for origin in settings.cors_origins:
        if origin == "*":
            raise ConfigError("BROADSHEET_CORS_ORIGINS may not be '*'; list the frontend origins")


def _development_secret(path: Path) -> str:
    """Give back the development JWT secret kept under var/, creating it once."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(48)
    path.write_text(value)
    path.chmod(0o600)
    return value


@lru_cache
def get_settings() -> Settings:
    """Give back the process-wide settings, checked once."""
    return Settings().check()
