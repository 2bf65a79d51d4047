"""The mail boundary: a session's steps against a real SMTP server, and what each failure says
(the newsletter's retry rules read the reply code), and the in-memory mailer's refusals."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest

from app.core.config import Settings
from app.core.mail import MailError, MemoryMailer, SmtpMailer
from tests.smtp import SmtpSink, free_port

RAW = b"From: news@broadsheet.example\nTo: {to}\nSubject: Hello\n\nHello.\n"


@pytest.fixture
def sink(smtp_sink: SmtpSink) -> Iterator[SmtpSink]:
    smtp_sink.handler.reset()
    yield smtp_sink
    smtp_sink.handler.reset()


async def test_a_session_sends_over_one_connection_and_reports_refusals_by_reply_code(
    settings: Settings, sink: SmtpSink
) -> None:
    sink.handler.refuse["gone@example.com"] = "550 5.1.1 No such user"
    sink.handler.refuse["busy@example.com"] = "451 4.3.0 Try again later"
    async with SmtpMailer(settings).open() as session:
        await session.mail_from("news@broadsheet.example")
        await session.rcpt_to("one@example.com")
        assert (await session.data(RAW)).startswith("250 ")
        for address, code, permanent in (
            ("gone@example.com", 550, True),
            ("busy@example.com", 451, False),
        ):
            await session.mail_from("news@broadsheet.example")
            with pytest.raises(MailError) as refused:
                await session.rcpt_to(address)
            assert (refused.value.reply_code, refused.value.permanent) == (code, permanent)
            assert str(refused.value) == sink.handler.refuse[address]
            await session.reset()
        await session.mail_from("news@broadsheet.example")
        await session.rcpt_to("two@example.com")
        await session.data(RAW)
    assert [(m.mail_from, m.rcpt_tos) for m in sink.handler.messages] == [
        ("news@broadsheet.example", ["one@example.com"]),
        ("news@broadsheet.example", ["two@example.com"]),
    ]


async def test_a_connection_lost_after_the_data_is_an_error_without_a_reply(
    settings: Settings, sink: SmtpSink
) -> None:
    sink.handler.drop_after_data.add("lost@example.com")
    async with SmtpMailer(settings).open() as session:
        await session.mail_from("news@broadsheet.example")
        await session.rcpt_to("lost@example.com")
        with pytest.raises(MailError) as lost:
            await session.data(RAW)
    assert (lost.value.reply_code, lost.value.permanent) == (None, False)
    assert sink.count() == 1  # the server may well have it: the caller must not assume either


async def test_an_unreachable_server_fails_to_open(settings: Settings) -> None:
    closed = settings.model_copy(update={"smtp_port": free_port(), "smtp_timeout": 5.0})
    with pytest.raises(MailError) as refused:
        async with SmtpMailer(closed).open():
            pass
    assert (refused.value.reply_code, refused.value.permanent) == (None, False)


def _message(to: str) -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["Subject"] = "Your sign-in link"
    message.set_content("https://reader.example/auth/magic?token=abc")
    return message


async def test_the_memory_mailer_keeps_messages_and_refuses_what_it_is_told(
    settings: Settings,
) -> None:
    mailer = MemoryMailer(settings)
    await mailer.send(_message("reader@example.com"))
    mailer.refuse("Busy@Example.com", permanent=False)
    mailer.refuse("gone@example.com", permanent=True)
    for address, permanent in (("busy@example.com", False), ("gone@example.com", True)):
        with pytest.raises(MailError) as refused:
            await mailer.send(_message(address))
        assert refused.value.permanent is permanent
    mailer.accept("busy@example.com")
    await mailer.send(_message("busy@example.com"))
    assert mailer.per_address() == {"reader@example.com": 1, "busy@example.com": 1}
    (sent,) = mailer.to("reader@example.com")
    # Stamped as the SMTP mailer stamps: the configured sender, a date and a Message-ID.
    assert sent["From"] == settings.mail_from and sent["Date"] and sent["Message-ID"]
    assert mailer.sent[0].sender == "news@broadsheet.example"
