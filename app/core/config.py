"""Settings: one typed object read from `BROADSHEET_*` environment variables and `.env`."""

from __future__ import annotations

import contextlib
import ipaddress
import secrets
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, IPvAnyNetwork, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from app.core.private_files import create_private, private_dir, write_private

API_PREFIX = "/api/v1"
MIN_SECRET_BYTES = 32
MIN_TOKEN_CHARS = 24
# A random secret of 32 bytes or more has far more; a typed or patterned one often has fewer.
MIN_DISTINCT_CHARS = 10
# Words found in values that ship in docs, compose files and examples ("changeme-changeme-...").
# Six letters or more, so a random secret contains one by chance about never.
WEAK_SECRET_WORDS = (
    "changeme",
    "secret",
    "password",
    "example",
    "development",
    "default",
    "insecure",
    "broadsheet",
    "letmein",
    "qwerty",
    "123456",
)


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


class Proration(StrEnum):
    """How a plan change applied now is billed (Stripe's `proration_behavior`)."""

    create_prorations = "create_prorations"
    always_invoice = "always_invoice"
    none = "none"


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
    # On in development, off in production unless set: the schema maps every admin route.
    docs_enabled: bool = Field(default_factory=lambda data: not _is_production(data))
    metrics_token: str = ""
    # An open /metrics in production, for a scraper on a network the public cannot reach.
    metrics_public: bool = False
    web_workers: int = Field(default=1, ge=1)
    embedded_worker: bool = True
    log_level: str = "INFO"
    log_json: bool = True
    # FastAPI's own OpenTelemetry spans and metrics: off unless asked for, as its per-request
    # check of the global providers took 2.6 % of a long-tail article read (py-spy).
    opentelemetry: bool = False
    db_pool_size: int = Field(default=10, ge=1)
    db_pool_timeout: float = Field(default=10.0, gt=0)
    # The longest one direct read or write may run on PostgreSQL before it is given up (503).
    db_command_timeout: float = Field(default=30.0, gt=0)

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
    # The publication's automatic paywall: a public article is gated (as `paid`) this many
    # days after it is published, unless it opts out or names its own days. None: off.
    auto_paywall_days: int | None = Field(default=None, ge=1, le=3650)
    preview_max_chars: int = Field(default=1500, ge=100, le=20_000)
    # Reader answers are kept this long at most; staff writes and articles going live clear
    # them sooner (checked every response_cache_check_seconds), comment counts wait it out.
    response_cache_seconds: float = Field(default=60.0, ge=0, le=300)
    response_cache_check_seconds: float = Field(default=0.1, gt=0, le=5)
    response_cache_mb: int = Field(default=32, ge=1, le=1024)
    # The search index's language: a PostgreSQL text search configuration; on SQLite
    # `english` means FTS5's porter stemmer, any other language no stemming. Fixed in the
    # index when migrations run (README, Search).
    search_language: str = Field(default="english", pattern=r"^[a-z_]{1,63}$")
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
    # The peers (CIDRs) whose X-Forwarded-For is believed; anyone else's is ignored.
    proxy_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(default_factory=list)

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
    # For a staging deployment that runs in production mode against Stripe's test mode.
    stripe_test_keys_allowed: bool = False
    billing_grace_days: int = Field(default=7, ge=0, le=60)
    # New provider checkout sessions per reader; each one is a call on Stripe's API budget.
    checkout_rate_limit: str = "10/hour"
    # A plan change applied now (an upgrade, or any change with the next one off).
    billing_proration: Proration = Proration.create_prorations
    # A downgrade keeps the higher plan until the period paid for ends (false: at once).
    billing_downgrade_at_period_end: bool = True

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("proxy_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return [network.strip() for network in value.split(",") if network.strip()]
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
        _prepare_var_dir(self)
        if not self.jwt_secret:
            self.jwt_secret = _development_secret(self.var_dir / "jwt_secret")
        if len(self.jwt_secret.encode()) < MIN_SECRET_BYTES:
            raise ConfigError(f"BROADSHEET_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return self

    def check_serving(self, workers: int) -> None:
        """Refuse to serve with `workers` processes when each would keep its own rate limits."""
        scheme = self.rate_limit_storage.split("://", 1)[0].removeprefix("async+")
        if self.is_production and workers > 1 and scheme == "memory":
            raise ConfigError(
                f"BROADSHEET_RATE_LIMIT_STORAGE=memory:// with {workers} workers gives each its "
                "own counters (every limit times the workers); use redis:// or one worker"
            )


def _is_production(data: dict[str, Any]) -> bool:
    return data.get("env") in (Environment.production, Environment.production.value)


def _refuse_unsafe_production(settings: Settings) -> None:
    for problems in (_secret_problems, _exposure_problems, _provider_problems, _network_problems):
        for problem in problems(settings):
            raise ConfigError(problem)


def _secret_problems(settings: Settings) -> list[str]:
    secret = settings.jwt_secret
    if not secret:
        return ["BROADSHEET_JWT_SECRET is not set; production needs a random secret"]
    if len(secret.encode()) < MIN_SECRET_BYTES:
        return [f"BROADSHEET_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes"]
    problems = []
    if is_weak_secret(secret):
        problems.append("BROADSHEET_JWT_SECRET is a development or trivially weak value")
    token = settings.metrics_token
    if token and (len(token) < MIN_TOKEN_CHARS or is_weak_secret(token)):
        problems.append(
            f"BROADSHEET_METRICS_TOKEN must be a random value of {MIN_TOKEN_CHARS}+ characters"
        )
    return problems


def is_weak_secret(value: str) -> bool:
    """Tell whether `value` contains a well-known word or too few distinct characters."""
    lowered = value.lower()
    return len(set(value)) < MIN_DISTINCT_CHARS or any(w in lowered for w in WEAK_SECRET_WORDS)


def _exposure_problems(settings: Settings) -> list[str]:
    problems = []
    if settings.docs_enabled and "docs_enabled" not in settings.model_fields_set:
        problems.append(
            "/docs is on by default only in development; set BROADSHEET_DOCS_ENABLED=true "
            "to serve it in production"
        )
    if not settings.metrics_token and not settings.metrics_public:
        problems.append(
            "BROADSHEET_METRICS_TOKEN is not set; set it, or BROADSHEET_METRICS_PUBLIC=true "
            "when only an internal network reaches /metrics"
        )
    if not settings.refresh_cookie_secure:
        problems.append("BROADSHEET_REFRESH_COOKIE_SECURE=false sends refresh tokens over http")
    for name, url in (("PUBLIC_URL", settings.public_url), ("API_URL", settings.api_url)):
        if not url.lower().startswith("https://"):
            problems.append(f"BROADSHEET_{name} must be an https:// URL in production")
    for origin in settings.cors_origins:
        if origin in ("*", "null"):
            problems.append(
                f"BROADSHEET_CORS_ORIGINS may not be {origin!r}; list the frontend origins"
            )
    return problems


def _provider_problems(settings: Settings) -> list[str]:
    problems = []
    if not settings.database_url:
        problems.append("BROADSHEET_DATABASE_URL is not set; production runs on PostgreSQL")
    key = settings.stripe_secret_key
    if not key:
        problems.append(
            "BROADSHEET_STRIPE_SECRET_KEY is not set; the local payment gateway is for development"
        )
    elif key.startswith(("sk_test_", "rk_test_")) and not settings.stripe_test_keys_allowed:
        problems.append(
            "BROADSHEET_STRIPE_SECRET_KEY is a test-mode key; set "
            "BROADSHEET_STRIPE_TEST_KEYS_ALLOWED=true for a staging deployment"
        )
    if settings.stripe_api_base:
        problems.append(
            "BROADSHEET_STRIPE_API_BASE is for tests; production sends the key to Stripe only"
        )
    if not settings.stripe_webhook_secret:
        problems.append(
            "BROADSHEET_STRIPE_WEBHOOK_SECRET is not set; every Stripe event would be refused"
        )
    if settings.mailer is MailerKind.file:
        problems.append("BROADSHEET_MAILER=file writes mail to disk; production needs smtp")
    elif (
        settings.smtp_password
        and settings.smtp_tls is SmtpTls.none
        and not _is_loopback(settings.smtp_host)
    ):
        problems.append(
            "BROADSHEET_SMTP_TLS=none would send the SMTP password in plain text to "
            f"{settings.smtp_host}; use starttls or tls"
        )
    return problems


def _network_problems(settings: Settings) -> list[str]:
    if settings.trusted_proxies and not settings.proxy_networks:
        return [
            "BROADSHEET_TRUSTED_PROXIES is set without BROADSHEET_PROXY_NETWORKS; list the "
            "proxies' addresses (CIDRs) whose X-Forwarded-For may be believed"
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _prepare_var_dir(settings: Settings) -> None:
    """Create var/ as 0700 and the default SQLite file as 0600 before anything writes them."""
    private_dir(settings.var_dir)
    if not settings.database_url:
        # SQLite gives the -wal and -shm files the mode of the database file.
        create_private(settings.var_dir / "broadsheet.db")


def _development_secret(path: Path) -> str:
    """Give back the development JWT secret kept under var/, creating it once."""
    if not path.exists():
        private_dir(path.parent)
        # If another process makes it first, theirs is the one to share.
        with contextlib.suppress(FileExistsError):
            write_private(path, secrets.token_urlsafe(48).encode(), exclusive=True)
    return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    """Give back the process-wide settings, checked once."""
    return Settings().check()
