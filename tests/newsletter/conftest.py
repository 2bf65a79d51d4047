"""Newsletter tests: fast retries and short leases, helpers to fill lists and drive workers."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient

from app.accounts.models import Role
from app.core.config import Settings
from app.core.db import Database, utcnow
from app.newsletter import jobs
from app.newsletter.models import Newsletter, NewsletterSubscription, Subscriber
from tests.conftest import make_settings
from tests.factories import Factory, Member
from tests.smtp import SmtpSink


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp_sink: SmtpSink) -> Settings:
    return make_settings(
        database_url,
        tmp_path / "var",
        smtp_sink.port,
        newsletter_retry_base_seconds=0,
        newsletter_lease_seconds=1,
        newsletter_batch_size=50,
        api_url="https://api.broadsheet.example",
    )


class Mailroom:
    def __init__(self, app: FastAPI, client: AsyncClient, factory: Factory, sink: SmtpSink) -> None:
        self.app, self.client, self.factory, self.sink = app, client, factory, sink
        self.db: Database = app.state.db
        self.settings: Settings = app.state.settings
        self._editor: Member | None = None

    async def editor(self) -> Member:
        if self._editor is None:
            self._editor = await self.factory.member(role=Role.editor)
        return self._editor

    async def newsletter(self, slug: str = "daily", **fields: Any) -> int:
        async with self.db.session() as session:
            newsletter = Newsletter(
                slug=slug,
                name=f"The {slug.title()}",
                sender_email="news@broadsheet.example",
                **fields,
            )
            session.add(newsletter)
            await session.flush()
            assert newsletter.id is not None
            return newsletter.id

    async def subscribers(
        self, newsletter_id: int, count: int, *, prefix: str = "reader"
    ) -> list[str]:
        """Add confirmed email-only subscribers in bulk."""
        emails = [f"{prefix}{i}@example.com" for i in range(count)]
        async with self.db.session() as session:
            rows = [Subscriber(email=e, status="active", confirmed_at=utcnow()) for e in emails]
            session.add_all(rows)
            await session.flush()
            session.add_all(
                [
                    NewsletterSubscription(subscriber_id=r.id or 0, newsletter_id=newsletter_id)
                    for r in rows
                ]
            )
        return emails

    async def issue(self, newsletter_id: int, **body: Any) -> int:
        payload = {
            "newsletter_id": newsletter_id,
            "subject": "Today",
            "body_md": "Hello readers.",
            **body,
        }
        response = await self.client.post(
            "/api/v1/admin/newsletters", json=payload, headers=(await self.editor()).headers
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def send(self, issue_id: int) -> dict[str, Any]:
        response = await self.client.post(
            f"/api/v1/admin/newsletters/{issue_id}/send", headers=(await self.editor()).headers
        )
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def progress(self, issue_id: int) -> dict[str, Any]:
        response = await self.client.get(
            f"/api/v1/admin/newsletters/{issue_id}", headers=(await self.editor()).headers
        )
        return response.json()  # type: ignore[no-any-return]

    async def drain(self, rounds: int = 200) -> None:
        """Run worker rounds until there is nothing left to do."""
        for _ in range(rounds):
            if not await jobs.deliver(self.db, self.settings):
                return
        raise AssertionError("delivery did not settle")

    def per_address(self) -> Counter[str]:
        with self.sink.handler.lock:
            return Counter(r for m in self.sink.handler.messages for r in m.rcpt_tos)


@pytest.fixture
def mailroom(app: FastAPI, client: AsyncClient, factory: Factory, smtp_sink: SmtpSink) -> Mailroom:
    return Mailroom(app, client, factory, smtp_sink)
