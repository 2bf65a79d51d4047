"""Request and response bodies of the accounts API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.accounts.emailaddr import normalise_email
from app.core.fields import OneLine

Email = Annotated[
    str,
    Field(min_length=3, max_length=320, json_schema_extra={"format": "email"}),
    AfterValidator(normalise_email),
]
# Length in characters here; the byte limit (argon2 input) is checked in the service.
Password = Annotated[str, Field(min_length=1, max_length=4096)]
OpaqueToken = Annotated[str, Field(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_\-]+$")]
DisplayName = Annotated[OneLine, Field(max_length=120)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignupIn(Strict):
    email: Email
    password: Password
    display_name: DisplayName = ""
    accept_terms: bool = False
    refresh_in_cookie: bool = False


class LoginIn(Strict):
    email: Email
    password: Password
    refresh_in_cookie: bool = False


class RefreshIn(Strict):
    refresh_token: OpaqueToken | None = None
    refresh_in_cookie: bool = False


class LogoutIn(Strict):
    refresh_token: OpaqueToken | None = None


class MagicLinkIn(Strict):
    email: Email
    accept_terms: bool = False
    display_name: DisplayName = ""


class TokenIn(Strict):
    token: OpaqueToken


class MagicLinkVerifyIn(TokenIn):
    refresh_in_cookie: bool = False


class PasswordResetIn(Strict):
    email: Email


class PasswordResetConfirmIn(Strict):
    token: OpaqueToken
    new_password: Password


class TokenPair(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth token type name
    expires_in: int
    refresh_token: str | None = Field(
        default=None, description="Absent when the refresh token was set as a cookie."
    )
    csrf_token: str | None = Field(
        default=None, description="Send back as X-CSRF-Token when refreshing with the cookie."
    )


class Accepted(BaseModel):
    status: str = "accepted"
    detail: str


class MeOut(BaseModel):
    id: int
    email: str
    display_name: str
    role: str
    email_verified: bool
    created_at: datetime
    last_login_at: datetime | None
    access_level: str
    newsletters: list[str]
    newsletter_status: str | None = Field(
        description="pending until the address is confirmed, then active; null with no choices"
    )


class MePatch(Strict):
    display_name: DisplayName | None = None
    email: Email | None = None
    new_password: Password | None = None
    current_password: Password | None = Field(
        default=None, description="Required to change email or password."
    )
    reauth_token: OpaqueToken | None = Field(
        default=None, description="A fresh magic-link token, instead of the current password."
    )
    newsletters: list[Annotated[str, Field(max_length=100)]] | None = Field(
        default=None, max_length=20, description="Slugs of the newsletters to receive."
    )


class MeDeleteIn(Strict):
    password: Password | None = None
    reauth_token: OpaqueToken | None = None


class ExportOut(BaseModel):
    exported_at: datetime
    profile: dict[str, Any]
    consents: list[dict[str, Any]]
    sessions: list[dict[str, Any]]
    subscriptions: list[dict[str, Any]]
    payments: list[dict[str, Any]]
    billing: dict[str, Any]
    complimentary_access: list[dict[str, Any]]
    comments: list[dict[str, Any]]
    comment_likes: list[dict[str, Any]]
    comment_reports: list[dict[str, Any]]
    preferences: dict[str, Any]
    labels: list[str]
    newsletters: list[dict[str, Any]] = Field(
        description="Each newsletter address: its lists and what was sent to it."
    )
