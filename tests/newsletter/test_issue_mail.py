"""The wire form of a newsletter message: valid MIME, any text, no header injection."""

from __future__ import annotations

from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from urllib.parse import unquote

from app.articles.markdown import plain_text
from app.core.config import Settings
from app.newsletter import issue_mail, tokens
from app.newsletter.models import Newsletter, NewsletterIssue

LONG_LINE = "A sentence that keeps going, " * 40


def _content(subject: str, body_html: str) -> issue_mail.IssueContent:
    newsletter = Newsletter(
        id=3, slug="daily", name="Le Café Quotidien", sender_email="news@broadsheet.example"
    )
    issue = NewsletterIssue(id=9, newsletter_id=3, subject=subject, preheader="Ça va")
    return issue_mail.IssueContent(newsletter, issue, body_html, None)


def _parse(raw: bytes) -> EmailMessage:
    parsed = message_from_bytes(raw, policy=default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_composed_message_round_trips_unicode_long_lines_and_an_unsubscribe_link(
    settings: Settings,
) -> None:
    content = _content("Naïve café — “quoted”", f"<p>Ünïcode ✓ {LONG_LINE}</p>")
    recipient = issue_mail.Recipient(41, 17, "reader@example.com", paid=False, member=False)
    raw = issue_mail.compose(content, recipient, settings, api_url="https://api.example")
    assert max(len(line) for line in raw.split(b"\n")) <= 998
    message = _parse(raw)
    assert message["Subject"] == "Naïve café — “quoted”"
    assert message["To"] == "reader@example.com"
    assert message["Message-ID"] == issue_mail.message_id(settings, 9, 41)
    assert message["List-Id"].startswith("Le Café Quotidien <daily.")
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    assert f"Ünïcode ✓ {LONG_LINE}" in html.get_content()
    assert "Ça va" in html.get_content()
    # The one-click link carries a token that unsubscribes exactly this reader.
    link = message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
    assert link.startswith("https://api.example/api/v1/newsletter/unsubscribe?token=")
    token = tokens.read(settings.jwt_secret, unquote(link.rsplit("=", 1)[-1]))
    assert (token.subscriber_id, token.newsletter_id, token.issue_id) == (17, 3, 9)
    assert link in text.get_content()


def test_line_breaks_in_a_subject_cannot_add_headers(settings: Settings) -> None:
    content = _content("Hello\r\nBcc: victim@example.com\nX-Evil: 1", "<p>Hi</p>")
    recipient = issue_mail.Recipient(1, 1, "reader@example.com", paid=False, member=False)
    message = _parse(issue_mail.compose(content, recipient, settings, api_url="https://a.example"))
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert "Bcc: victim@example.com" in message["Subject"]


def test_build_gives_the_same_message_parsed(settings: Settings) -> None:
    content = _content("Same", "<p>Body</p>")
    recipient = issue_mail.Recipient(5, 6, "r@example.com", paid=True, member=True)
    built = issue_mail.build(content, recipient, settings, api_url="https://a.example")
    body = built.get_body(preferencelist=("plain",))
    assert built["Subject"] == "Same" and body is not None and "Body" in body.get_content()


def test_parts_encoded_once_per_level_join_into_each_readers_whole_text(
    settings: Settings,
) -> None:
    # Trailing spaces and a line far past 76 characters right before the joins.
    intro = f"<p>{LONG_LINE}</p><p>Ends with spaces   </p>"
    content = _content("Join", intro)
    bodies = []
    for n in (1, 2):
        recipient = issue_mail.Recipient(n, n, f"r{n}@example.com", paid=False, member=False)
        message = _parse(issue_mail.compose(content, recipient, settings, api_url="https://a.x"))
        link = message["List-Unsubscribe"].split("<", 1)[1].split(">", 1)[0]
        text = message.get_body(preferencelist=("plain",))
        html = message.get_body(preferencelist=("html",))
        assert text is not None and html is not None
        footer = f"\n\n--\nYou receive Le Café Quotidien. Unsubscribe: {link}"
        assert text.get_content().rstrip("\n") == plain_text(intro) + footer
        assert f"{intro}\n<p style=" in html.get_content()
        assert html.get_content().rstrip("\n").endswith("</td></tr></table></body></html>")
        bodies.append(html.get_content().replace(link.replace("&", "&amp;"), "LINK"))
    # Everything but the reader's own link is the same for both.
    assert bodies[0] == bodies[1]
