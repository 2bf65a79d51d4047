"""The per-app objects the account services need: settings, token codec, password hasher."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.config import Settings
from app.core.security import PasswordHasher, TokenCodec


@dataclass(frozen=True)
class AuthKit:
    settings: Settings
    codec: TokenCodec
    hasher: PasswordHasher

    @classmethod
    def build(cls, settings: Settings) -> AuthKit:
        return cls(settings, TokenCodec(settings), PasswordHasher(settings))
