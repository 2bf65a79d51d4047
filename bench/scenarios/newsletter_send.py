"""Scenario 6: send one issue to N subscribers through an aiosmtpd sink, against a bare
aiosmtplib loop sending the same messages over one connection to the same sink.

The sink runs in a process of its own and only counts what it accepts: parsing each message
in a thread of the sending process made both numbers swing by a third from run to run.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiosmtplib
from aiosmtpd.controller import Controller
from sqlalchemy import insert, text

from app.core.config import MailerKind, Settings
from app.core.db import Database, utcnow
from app.newsletter import issue_mail, jobs, service
from app.newsletter.models import Newsletter, NewsletterIssue, NewsletterSubscription, Subscriber
from app.newsletter.recipients import snapshot
from tests.smtp import free_port


class CountingSink:
    """An aiosmtpd server in its own process that appends one byte to a file per message."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.tally = workdir / "sink.tally"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.tally.write_bytes(b"")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.scenarios.newsletter_send",
                str(self.port),
                str(self.tally),
            ]
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.1)
        raise SystemExit("the SMTP sink did not start")

    def count(self) -> int:
        return self.tally.stat().st_size

    def reset(self) -> None:
        self.tally.write_bytes(b"")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)


class _Tally:
    def __init__(self, path: str) -> None:
        self.file = open(path, "ab", buffering=0)  # noqa: SIM115 - open for the process's life

    async def handle_DATA(self, *_: object) -> str:  # noqa: N802 - aiosmtpd hook
        self.file.write(b".")
        return "250 Message accepted"


def _serve_sink(port: int, path: str) -> None:
    controller = Controller(_Tally(path), hostname="127.0.0.1", port=port)
    controller.start()
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    controller.stop()


async def run(url: str, workdir: Path, recipients: int) -> dict[str, Any]:
    sink = CountingSink(workdir)
    sink.start()
    settings = Settings(
        database_url=url,
        jwt_secret="b" * 40,
        var_dir=workdir / "var",
        mailer=MailerKind.smtp,
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        mail_from="Bench <news@bench.example>",
        newsletter_batch_size=500,
        api_url="https://api.bench.example",
    )
    db = Database(settings)
    try:
        async with db.session() as session:
            newsletter = Newsletter(
                slug="bench", name="Bench Daily", sender_email="news@bench.example"
            )
            session.add(newsletter)
            await session.flush()
            issue = NewsletterIssue(
                newsletter_id=newsletter.id or 0,
                subject="Bench issue",
                body_md="Today's news, " * 200,
            )
            session.add(issue)
            await session.flush()
            now = utcnow()
            conn = await session.connection()
            await conn.execute(
                insert(Subscriber),
                [
                    {
                        "email": f"nl{i}@bench.example",
                        "status": "active",
                        "source": "bench",
                        "created_at": now,
                        "confirmed_at": now,
                    }
                    for i in range(recipients)
                ],
            )
            ids = [
                r[0]
                for r in (
                    await conn.execute(text("SELECT id FROM subscriber WHERE source = 'bench'"))
                ).all()
            ]
            await conn.execute(
                insert(NewsletterSubscription),
                [
                    {
                        "subscriber_id": i,
                        "newsletter_id": newsletter.id,
                        "active": True,
                        "subscribed_at": now,
                    }
                    for i in ids
                ],
            )
            await snapshot(session, issue, settings)
            issue_id = issue.id or 0
        started = time.perf_counter()
        while await jobs.deliver(db, settings):
            pass
        ours = time.perf_counter() - started
        delivered = sink.count()
        # The yardstick: the same messages, prebuilt, over one connection.
        async with db.session(write=False) as session:
            content = await service.content_of(session, await service.get_issue(session, issue_id))
        messages = [
            issue_mail.build(
                content,
                issue_mail.Recipient(i, i, f"nl{i}@bench.example", False, False),
                settings,
                api_url=settings.api_url,
            ).as_bytes()
            for i in range(recipients)
        ]
        sink.reset()
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=sink.port)
        started = time.perf_counter()
        async with client:
            for i, raw in enumerate(messages):
                await client.sendmail("news@bench.example", [f"nl{i}@bench.example"], raw)
        bare = time.perf_counter() - started
        bare_delivered = sink.count()
        del session
    finally:
        await db.dispose()
        sink.stop()
    return {
        "recipients": recipients,
        "delivered": delivered,
        "bare_delivered": bare_delivered,
        "messages_per_s": round(recipients / ours, 1),
        "bare_aiosmtplib_messages_per_s": round(recipients / bare, 1),
        "ratio_to_bare": round(bare / ours, 3),
    }


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    _serve_sink(int(sys.argv[1]), sys.argv[2])
