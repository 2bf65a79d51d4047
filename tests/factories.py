"""Small async factories: users of any role, with a ready access token."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import FastAPI
from sqlmodel import select

from app.accounts import service as accounts
from app.accounts.auth_context import AuthContext
from app.accounts.models import Role, User
from app.articles import derived
from app.articles import service as articles_service
from app.articles.models import Article, Status, Visibility
from app.articles.schemas import ArticleCreate
from app.billing.models import Plan, Subscription, Tier
from app.core.db import Database, pk, utcnow

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
        self.auth: AuthContext = app.state.auth

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
                self.auth,
                email=address,
                password=password,
                display_name=name or address.split("@")[0],
                role=role,
                email_verified=True,
            )
            issued = await accounts.open_session(session, self.auth, user)
        return Member(user, issued.access_token, issued.refresh_token, password)

    async def tier(self, slug: str, *, amount: int = 500) -> Tier:
        """A paid tier on sale with one monthly plan."""
        async with self.db.session() as session:
            tier = Tier(name=slug.title(), slug=slug)
            session.add(tier)
            await session.flush()
            session.add(Plan(tier_id=pk(tier.id), name=f"{slug} monthly", amount=amount))
        return tier

    async def subscriber(
        self, tier: Tier | None, *, status: str = "active", past_due_days: int | None = None
    ) -> Member:
        """A reader with one subscription to a plan of `tier` in `status` (past due since
        `past_due_days` ago), as the webhook path would have stored it."""
        member = await self.member()
        async with self.db.session() as session:
            plan = None
            if tier is not None:
                plan = (await session.exec(select(Plan).where(Plan.tier_id == tier.id))).first()
            now = utcnow()
            session.add(
                Subscription(
                    user_id=member.id,
                    provider_subscription_id=f"sub_factory_{next(_counter)}",
                    customer_id=f"cus_factory_{member.id}",
                    plan_id=plan.id if plan else None,
                    status=status,
                    current_period_end=now + timedelta(days=20),
                    past_due_since=None
                    if past_due_days is None
                    else now - timedelta(days=past_due_days),
                )
            )
        return member


class ArticleFactory:
    """Articles made through the real service code, published unless told otherwise."""

    def __init__(self, app: FastAPI) -> None:
        self.db: Database = app.state.db
        self.renderer = app.state.renderer
        self._n = itertools.count(1)

    async def make(
        self,
        editor: Member,
        *,
        title: str | None = None,
        body: str = "A free first paragraph.\n\n<!-- paywall -->\n\nThe rest.",
        visibility: str = "public",
        status: str = "published",
        published_at: datetime | None = None,
        tags: list[str] | None = None,
        **fields: Any,
    ) -> Article:
        data = ArticleCreate(
            title=title or f"Article number {next(self._n)}",
            body_md=body,
            visibility=Visibility(visibility),
            tags=tags or [],
            **fields,
        )
        async with self.db.session() as session:
            user = await session.get(User, editor.id)
            assert user is not None
            article = await articles_service.create_article(session, self.renderer, user, data)
            if status == "published":
                await articles_service.set_status(
                    session, user, article, Status.published, published_at=published_at
                )
            elif status != "draft":
                article.status = status
                article.published_at = published_at
                session.add(article)
                await derived.article(session, pk(article.id))
        return article
