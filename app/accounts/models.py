"""Account tables: users, consents, refresh-token families and single-use email tokens."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, String
from sqlmodel import Field, SQLModel

from app.core.db import utcnow
from app.core.types import UTCDateTime


class Role(StrEnum):
    reader = "reader"
    author = "author"
    editor = "editor"
    admin = "admin"


STAFF_ROLES = frozenset({Role.author, Role.editor, Role.admin})


def issued_after_revocations(tokens_valid_after: datetime | None, issued_at: datetime) -> bool:
    """Tell whether a token issued at `issued_at` survives revocations up to
    `tokens_valid_after` (the user's column of that name)."""
    return tokens_valid_after is None or issued_at > tokens_valid_after


class ConsentDocument(StrEnum):
    terms = "terms"
    privacy = "privacy"


class TokenPurpose(StrEnum):
    magic_link = "magic_link"
    verify_email = "verify_email"
    password_reset = "password_reset"  # noqa: S105 - a purpose name, not a secret
    email_change = "email_change"
    newsletter_confirm = "newsletter_confirm"


class User(SQLModel, table=True):
    __tablename__ = "user"

    id: int | None = Field(default=None, primary_key=True)
    # Stored normalised (lower case), so the unique index is case-insensitive by construction.
    email: str = Field(sa_column=Column(String(320), nullable=False, unique=True))
    password_hash: str | None = Field(default=None, max_length=255)
    display_name: str = Field(default="", max_length=120)
    role: str = Field(default=Role.reader.value, max_length=16, index=True)
    email_verified: bool = False
    disabled: bool = False
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    last_login_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Access tokens issued before this moment are refused (password reset, disable, delete).
    tokens_valid_after: datetime | None = Field(default=None, sa_type=UTCDateTime)
    deleted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Consent(SQLModel, table=True):
    __tablename__ = "consent"

    id: int | None = Field(default=None, primary_key=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True, ondelete="CASCADE")
    email: str = Field(max_length=320, index=True)
    document: str = Field(max_length=16)
    version: str = Field(max_length=32)
    accepted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    ip: str | None = Field(default=None, max_length=64)
    source: str = Field(default="signup", max_length=32)


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_token"
    __table_args__ = (Index("ix_refresh_token_family", "family_id"),)

    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="user.id", index=True, ondelete="CASCADE")
    family_id: str = Field(max_length=32)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class EmailToken(SQLModel, table=True):
    """A single-use token sent by email: magic link, verification, reset or email change."""

    __tablename__ = "email_token"

    id: int | None = Field(default=None, primary_key=True)
    purpose: str = Field(max_length=24)
    token_hash: str = Field(max_length=64, unique=True)
    user_id: int | None = Field(default=None, foreign_key="user.id", index=True, ondelete="CASCADE")
    # For a sign-up by magic link (no user yet) or an email change: the address it is for.
    email: str = Field(max_length=320)
    # A magic link for a new account carries the consent given when it was requested.
    accepted_terms: bool = False
    consent_ip: str | None = Field(default=None, max_length=64)
    # What the link is for beyond its purpose (e.g. the newsletters an opt-in adds).
    data: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=UTCDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
