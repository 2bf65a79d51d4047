"""What issuing and checking credentials needs, built once per app: settings, token codec,
password hasher (the request dependency is `AuthContextDep` in app/accounts/deps.py)."""

from __future__ import annotations

from dataclasses import dataclass

from app.core.config import Settings
from app.core.security import PasswordHasher, TokenCodec


@dataclass(frozen=True)
class AuthContext:
    """The settings, token codec and password hasher the account services are handed."""

    settings: Settings
    codec: TokenCodec
    hasher: PasswordHasher

    @classmethod
    def build(cls, settings: Settings) -> AuthContext:
        return cls(settings, TokenCodec(settings), PasswordHasher(settings))
