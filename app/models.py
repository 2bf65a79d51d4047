"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

from app.accounts.models import Consent, EmailToken, RefreshToken, User

__all__ = ["Consent", "EmailToken", "RefreshToken", "User", "metadata"]

metadata = SQLModel.metadata
