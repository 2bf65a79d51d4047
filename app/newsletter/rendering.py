"""Building each recipient's message: the paywall holds in email too.

Entitled recipients get the article's full text; the others get the free part and a
"Subscribe to keep reading" link. Headers make every message a good list citizen: a stable
Message-ID per (issue, recipient), List-Id, and RFC 8058 one-click unsubscribe.
"""

from __future__ import annotations

import binascii
import secrets
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate
from html import escape
from urllib.parse import quote, urlencode

from app.articles.gating import decide
from app.articles.models import Article
from app.articles.rendering import plain_text
from app.billing.entitlements import AccessLevel
from app.core.config import Settings
from app.core.db import pk
from app.newsletter import tokens
from app.newsletter.models import Newsletter, NewsletterIssue

FONT = "font-family:Georgia,'Times New Roman',serif;font-size:17px;line-height:1.6;color:#1a1a1a"


@dataclass(frozen=True)
class Recipient:
    delivery_id: int
    subscriber_id: int
    email: str
    paid: bool
    member: bool

    @property
    def level(self) -> AccessLevel:
        if self.paid:
            return AccessLevel.paid
        return AccessLevel.member if self.member else AccessLevel.anonymous


@dataclass(frozen=True)
class IssueContent:
    """What an issue says, rendered once and shared by every recipient."""

    newsletter: Newsletter
    issue: NewsletterIssue
    intro_html: str
    article: Article | None
    _bodies: dict[AccessLevel, tuple[str, str]] = field(default_factory=dict, compare=False)

    def body(self, level: AccessLevel, settings: Settings) -> tuple[str, str]:
        """The HTML and text a reader at `level` gets, rendered once per level."""
        if level not in self._bodies:
            self._bodies[level] = _body(self, level, settings)
        return self._bodies[level]


def mail_domain(settings: Settings) -> str:
    return settings.mail_from.rsplit("@", 1)[-1].strip(" >") or "localhost"


def message_id(settings: Settings, issue_id: int, delivery_id: int) -> str:
    """The same Message-ID on every attempt, so a retried send is recognisably one message."""
    return f"<issue-{issue_id}.rcpt-{delivery_id}@{mail_domain(settings)}>"


def _body(content: IssueContent, level: AccessLevel, settings: Settings) -> tuple[str, str]:
    parts_html = [content.intro_html] if content.intro_html else []
    parts_text = [plain_text(content.intro_html)] if content.intro_html else []
    article = content.article
    if article is not None:
        url = f"{settings.public_url}/{article.slug}"
        access = decide(article.visibility, level)
        parts_html.append(
            f'<h1 style="font-size:26px"><a href="{escape(url, quote=True)}" '
            f'style="color:#1a1a1a">{escape(article.title)}</a></h1>'
        )
        parts_text.append(article.title.upper())
        if article.subtitle:
            parts_html.append(f"<p><em>{escape(article.subtitle)}</em></p>")
            parts_text.append(article.subtitle)
        if access.granted:
            parts_html.append(article.content_html)
            parts_text.append(plain_text(article.content_html))
        else:
            action = (
                "Subscribe to keep reading"
                if article.visibility == "paid"
                else "Sign up free to keep reading"
            )
            parts_html.append(article.preview_html)
            parts_html.append(
                f'<p style="margin:32px 0">'
                f'<a href="{escape(url, quote=True)}?utm_source=newsletter" '
                f'style="background:#1a1a1a;color:#fff;padding:12px 20px;text-decoration:none">'
                f"{action}</a></p>"
            )
            parts_text.append(plain_text(article.preview_html))
            parts_text.append(f"{action}: {url}")
    return "".join(parts_html), "\n\n".join(parts_text)


def build(
    content: IssueContent, recipient: Recipient, settings: Settings, *, api_url: str
) -> EmailMessage:
    """Give back the message for one recipient, parsed (previews and test sends)."""
    parsed = message_from_bytes(compose(content, recipient, settings, api_url=api_url), policy=SMTP)
    if not isinstance(parsed, EmailMessage):
        raise TypeError("the email policy gave back a legacy Message")
    return parsed


def compose(
    content: IssueContent, recipient: Recipient, settings: Settings, *, api_url: str
) -> bytes:
    """Give back one recipient's message as wire bytes (MIME, quoted-printable parts).

    Written out directly instead of through `email.message`: building and flattening an
    EmailMessage per recipient took over half of a newsletter send.
    """
    newsletter, issue = content.newsletter, content.issue
    token = tokens.make(
        settings.jwt_secret,
        subscriber_id=recipient.subscriber_id,
        newsletter_id=pk(newsletter.id),
        issue_id=pk(issue.id),
    )
    unsubscribe_url = f"{api_url}/api/v1/newsletter/unsubscribe?{urlencode({'token': token})}"
    domain = mail_domain(settings)
    html_body, text_body = content.body(recipient.level, settings)
    footer_text = f"\n\n--\nYou receive {newsletter.name}. Unsubscribe: {unsubscribe_url}"
    footer_html = (
        f'<p style="font-size:13px;color:#666">You receive {escape(newsletter.name)}. '
        f'<a href="{escape(unsubscribe_url, quote=True)}" style="color:#666">Unsubscribe</a></p>'
    )
    preheader = (
        f'<div style="display:none;max-height:0;overflow:hidden">{escape(issue.preheader)}</div>'
        if issue.preheader
        else ""
    )
    html = (
        '<!doctype html><html><body style="margin:0;padding:0;background:#f6f5f1">'
        f'{preheader}<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
        f'<tr><td align="center"><table role="presentation" width="600" '
        f'style="max-width:600px;background:#fff;padding:24px;{FONT}"><tr><td style="{FONT}">'
        f"{html_body}{footer_html}</td></tr></table></td></tr></table></body></html>"
    )
    sender = newsletter.sender_email or settings.mail_from
    mailto = f"mailto:unsubscribe@{domain}?subject={quote('unsubscribe ' + token)}"
    from_value = (
        formataddr((newsletter.sender_name, sender))
        if newsletter.sender_name and "<" not in sender
        else sender
    )
    headers = [
        ("From", _clean(from_value)),
        ("To", _clean(recipient.email)),
        ("Subject", _encoded(issue.subject)),
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", message_id(settings, pk(issue.id), recipient.delivery_id)),
    ]
    if newsletter.reply_to:
        headers.append(("Reply-To", _clean(newsletter.reply_to)))
    # "=_" never occurs in quoted-printable text ("=" is always "=3D"), so no part can
    # contain the boundary.
    boundary = f"=_bs_{secrets.token_hex(12)}"
    headers += [
        ("List-Id", f"{_encoded(newsletter.name)} <{newsletter.slug}.{domain}>"),
        # Folded after the comma: the two addresses together run past 78 characters.
        ("List-Unsubscribe", f"<{_clean(unsubscribe_url)}>,\n <{_clean(mailto)}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ("Precedence", "bulk"),
        ("MIME-Version", "1.0"),
        ("Content-Type", f'multipart/alternative; boundary="{boundary}"'),
    ]
    head = "".join(f"{name}: {value}\n" for name, value in headers)
    return b"".join(
        [
            # UTF-8 only where an address itself is not ASCII (SMTPUTF8); all else is ASCII.
            head.encode("utf-8"),
            b"\n",
            _part(boundary, "plain", text_body + footer_text),
            _part(boundary, "html", html),
            f"--{boundary}--\n".encode("ascii"),
        ]
    )


def _encoded(value: str) -> str:
    """A header value as ASCII: RFC 2047 words when it is not ASCII already."""
    value = _clean(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def _clean(value: str) -> str:
    # Header values come from staff and reader input: a line break would start a header.
    return value.replace("\r", " ").replace("\n", " ")


def _part(boundary: str, subtype: str, body: str) -> bytes:
    encoded = binascii.b2a_qp(body.encode("utf-8"), istext=True)
    return (
        (
            f'--{boundary}\nContent-Type: text/{subtype}; charset="utf-8"\n'
            "Content-Transfer-Encoding: quoted-printable\n\n"
        ).encode("ascii")
        + encoded
        + b"\n"
    )
