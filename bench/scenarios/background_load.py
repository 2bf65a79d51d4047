"""Scenario 7: anonymous article reads while heavy writes run in the same API process.

(a) a member CSV import of just under 20 MB (Ghost's columns, new members), (b) a newsletter
snapshot of 100,000 recipients (`POST /admin/newsletters/{id}/send` fixes its recipients in
the request). Each job runs back to back in a thread for the whole measurement, so every read
in the window competes with one; what counts is the reads' p99, next to the same reads with
nothing in the background (scenarios 1 and 1u).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import insert, text

from app.core.config import Settings
from app.core.db import Database, utcnow
from app.newsletter.models import Newsletter, NewsletterSubscription, Subscriber

CSV_BYTES = 20 * 1024 * 1024 - 64 * 1024  # under the import's 20 MB limit
NEWSLETTER_SLUG = "bench-background"
CHUNK = 5_000
_HEADER = "email,name,note,subscribed_to_emails,complimentary_plan,labels,created_at\n"


def member_csv(run: int, size: int = CSV_BYTES) -> bytes:
    """A Ghost members export of `size` bytes, every row a new member."""
    rows = [_HEADER]
    total = len(_HEADER)
    for i in itertools.count():
        row = (
            f"import-{run}-{i}@members.example,Imported Reader {i},bench,true,,bench,"
            "2024-05-01T10:00:00.000Z\n"
        )
        if total + len(row) > size:
            break
        rows.append(row)
        total += len(row)
    return "".join(rows).encode()


async def prepare_snapshot(url: str, recipients: int) -> int:
    """Give the background newsletter its `recipients` active subscribers; its id back."""
    db = Database(Settings(database_url=url, jwt_secret="b" * 40))
    try:
        async with db.session() as session:
            newsletter = Newsletter(
                slug=NEWSLETTER_SLUG, name="Bench Background", sender_email="bg@bench.example"
            )
            session.add(newsletter)
            await session.flush()
            conn = await session.connection()
            now = utcnow()
            for start in range(0, recipients, CHUNK):
                await conn.execute(
                    insert(Subscriber),
                    [
                        {"email": f"bg{i}@bench.example", "status": "active",
                         "source": NEWSLETTER_SLUG, "created_at": now, "confirmed_at": now}
                        for i in range(start, min(start + CHUNK, recipients))
                    ],
                )  # fmt: skip
            ids = [
                r[0]
                for r in (
                    await conn.execute(
                        text("SELECT id FROM subscriber WHERE source = :s"), {"s": NEWSLETTER_SLUG}
                    )
                ).all()
            ]
            for start in range(0, len(ids), CHUNK):
                await conn.execute(
                    insert(NewsletterSubscription),
                    [
                        {"subscriber_id": i, "newsletter_id": newsletter.id, "active": True,
                         "subscribed_at": now}
                        for i in ids[start : start + CHUNK]
                    ],
                )  # fmt: skip
            return newsletter.id or 0
    finally:
        await db.dispose()


class Background(threading.Thread):
    """Runs `job(n)` for n = 0, 1, ... until stopped; keeps each run's status and seconds."""

    def __init__(self, job: Callable[[int], int]) -> None:
        super().__init__(daemon=True)
        self.job = job
        self.stopping = threading.Event()
        self.runs: list[tuple[int, float]] = []

    def run(self) -> None:
        for n in itertools.count():
            if self.stopping.is_set():
                return
            started = time.perf_counter()
            try:
                status = self.job(n)
            except httpx.HTTPError:
                # The server was stopped under a job that was not waited for.
                return
            self.runs.append((status, round(time.perf_counter() - started, 2)))

    def report(self) -> dict[str, Any]:
        return {
            "jobs_finished": len(self.runs),
            "still_running": self.is_alive(),
            "statuses": sorted({status for status, _ in self.runs}),
            "seconds": [seconds for _, seconds in self.runs],
        }


def import_job(base: str, token: str) -> Callable[[int], int]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}

    def job(n: int) -> int:
        answer = httpx.post(
            f"{base}/api/v1/admin/members/import",
            content=member_csv(n),
            headers=headers,
            timeout=900,
        )
        return answer.status_code

    return job


def snapshot_job(
    base: str, token: str, newsletter_id: int, started: list[int]
) -> Callable[[int], int]:
    """Create an issue to the background newsletter and send it; its id goes to `started`."""
    headers = {"Authorization": f"Bearer {token}"}

    def job(n: int) -> int:
        issue = httpx.post(
            f"{base}/api/v1/admin/newsletters",
            json={"newsletter_id": newsletter_id, "subject": f"Background {n}", "body_md": "News"},
            headers=headers,
            timeout=60,
        )
        if issue.status_code != 201:
            return issue.status_code
        started.append(issue.json()["id"])
        sent = httpx.post(
            f"{base}/api/v1/admin/newsletters/{started[-1]}/send", headers=headers, timeout=900
        )
        return sent.status_code

    return job


def cancel_issues(base: str, token: str, ids: list[int]) -> None:
    """Stop the background sends, so no later scenario's worker sends them."""
    for issue_id in ids:
        httpx.post(
            f"{base}/api/v1/admin/newsletters/{issue_id}/cancel",
            headers={"Authorization": f"Bearer {token}"},
            timeout=300,
        ).raise_for_status()


def measure_during(
    job: Callable[[int], int], measure: Callable[[], dict[str, Any]], *, wait: bool
) -> dict[str, Any]:
    """Run `measure` while `job` runs back to back; the job's runs go with the result.

    Without `wait`, a job still running when the measurement ends is left to the server,
    which the caller stops next (a 20 MB import takes minutes on SQLite).
    """
    background = Background(job)
    background.start()
    time.sleep(0.5)  # the first run is under way before the first read
    measured = measure()
    background.stopping.set()
    if wait:
        background.join()
    measured["background"] = background.report()
    return measured


def admin_token(base: str, email: str, password: str) -> str:
    answer = httpx.post(
        f"{base}/api/v1/auth/login", json={"email": email, "password": password}, timeout=60
    )
    answer.raise_for_status()
    token: str = answer.json()["access_token"]
    return token
