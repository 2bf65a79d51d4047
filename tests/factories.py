"""Small async factories: users of any role, with a ready access token."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from fastapi import FastAPI

from app.accounts import service as accounts
from app.accounts.kit import AuthKit
from app.accounts.models import Role, User
from app.core.db import Database

DEFAULT_PASSWORD = "correct horse battery"
_counter = itertools.count(1)


@dataclass
class Member:
    user: User
    token: str
    refresh_token: str
    password: str

    @property
    def id(self) -> int:
        assert self.user.id is not None
        return self.user.id

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Factory:
    def __init__(self, app: FastAPI) -> None:
        self.db: Database = app.state.db
        self.kit: AuthKit = app.state.auth

    async def member(
        self,
        *,
        role: Role = Role.reader,
        email: str | None = None,
        password: str = DEFAULT_PASSWORD,
        name: str = "",
    ) -> Member:
        """Create a user with `role` and sign it in."""
        address = email or f"user{next(_counter)}@example.com"
        async with self.db.session() as session:
            user = await accounts.create_user(
                session,
                self.kit,
                email=address,
                password=password,
                display_name=name or address.split("@")[0],
                role=role,
                email_verified=True,
            )
            issued = await accounts.open_session(session, self.kit, user)
        return Member(user, issued.access_token, issued.refresh_token, password)
