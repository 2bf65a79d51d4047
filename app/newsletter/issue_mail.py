"""Each recipient's newsletter message, written as MIME bytes: the paywall holds in email too.

Entitled recipients get the article's full text; the others get the free part and a
"Subscribe to keep reading" link ("Upgrade to keep reading" for a paying reader of another
tier). Each delivery row carries the recipient's tiers from the snapshot, so an article for
chosen tiers reaches its tiers' readers in full and nobody else. Headers make every message
a good list citizen: a stable Message-ID per (issue, recipient), List-Id, and RFC 8058
one-click unsubscribe.
"""

from __future__ import annotations

import binascii
import functools
import secrets
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import Header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formataddr, formatdate
from html import escape

from app.access.decision import Access, Reason, decide
from app.access.entitlements import Entitlements
from app.access.rules import Rules, Visibility
from app.articles.markdown import PreviewRule, Renderer, plain_text
from app.articles.models import Article
from app.billing.repository.recipient_tiers import parse_tier_list
from app.core.config import Settings
from app.core.db import pk, utcnow
from app.newsletter import tokens
from app.newsletter.models import Newsletter, NewsletterIssue

# Issue intros are Markdown like articles; in an email every link is external.
_INTROS = Renderer("", PreviewRule(blocks=1, max_chars=0))
FONT = "font-family:Georgia,'Times New Roman',serif;font-size:17px;line-height:1.6;color:#1a1a1a"


async def intro_html(body_md: str) -> str:
    """Give back an issue's own Markdown as safe HTML ("" when it has none)."""
    return await _INTROS.to_html_off_loop(body_md) if body_md else ""


async def issue_content(
    newsletter: Newsletter,
    issue: NewsletterIssue,
    article: Article | None,
    article_tiers: frozenset[int] = frozenset(),
) -> IssueContent:
    """Give back what the issue says, its intro rendered, ready for every recipient;
    `article_tiers` are the tiers a `tiers` article is for."""
    intro = await intro_html(issue.body_md)
    return IssueContent(newsletter, issue, intro, article, article_tiers)


@dataclass(frozen=True)
class Recipient:
    """One recipient as the delivery row has them: `tiers` is the row's tier list ("*"
    every tier, tier ids comma-separated, "" none)."""

    delivery_id: int
    subscriber_id: int
    email: str
    paid: bool
    member: bool
    tiers: str = ""

    @property
    def reader(self) -> Entitlements:
        """The recipient to the paywall, as they were when the snapshot was taken."""
        every_tier, tiers = parse_tier_list(self.tiers)
        return Entitlements(
            signed_in=self.member,
            tiers=tiers,
            every_tier=every_tier,
            # Paid without a tier by name: a plan since deleted pays for `paid` articles only.
            untiered=self.paid and not every_tier and not tiers,
        )


@dataclass(frozen=True)
class IssueContent:
    """What an issue says, rendered once and shared by every recipient."""

    newsletter: Newsletter
    issue: NewsletterIssue
    intro_html: str
    article: Article | None
    article_tiers: frozenset[int] = frozenset()
    _wires: dict[str, _Wire] = field(default_factory=dict, compare=False)
    # "=_" never occurs in quoted-printable text ("=" is always "=3D"), so no part can
    # contain the boundary, and one boundary serves every message of the issue.
    boundary: str = field(default_factory=lambda: f"=_bs_{secrets.token_hex(12)}", compare=False)

    def wire(self, reader: Entitlements, settings: Settings) -> _Wire:
        """What every reader of `reader`'s key gets, rendered and encoded once per key."""
        if reader.key not in self._wires:
            self._wires[reader.key] = _wire(self, reader, settings)
        return self._wires[reader.key]


@dataclass(frozen=True)
class _Wire:
    """The bytes of a message that are the same for every recipient of one entitlements key.

    Quoted-printable works line by line, so parts encoded apart and split at line breaks
    join into the encoding of the whole: only each recipient's footer is encoded per message.
    """

    headers: str  # From, Subject and Reply-To
    text: bytes
    html_head: bytes
    html_tail: bytes
    tail_headers: str  # through Content-Type


_HTML_TAIL = "</td></tr></table></td></tr></table></body></html>"


def _wire(content: IssueContent, reader: Entitlements, settings: Settings) -> _Wire:
    newsletter, issue = content.newsletter, content.issue
    html_body, text_body = _body(content, reader, settings)
    preheader = (
        f'<div style="display:none;max-height:0;overflow:hidden">{escape(issue.preheader)}</div>'
        if issue.preheader
        else ""
    )
    html_head = (
        '<!doctype html><html><body style="margin:0;padding:0;background:#f6f5f1">'
        f'{preheader}<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
        f'<tr><td align="center"><table role="presentation" width="600" '
        f'style="max-width:600px;background:#fff;padding:24px;{FONT}"><tr><td style="{FONT}">'
        f"{html_body}\n"
    )
    sender = newsletter.sender_email or settings.mail_from
    from_value = (
        formataddr((newsletter.sender_name, sender))
        if newsletter.sender_name and "<" not in sender
        else sender
    )
    headers = f"From: {_clean(from_value)}\nSubject: {_encoded(issue.subject)}\n"
    if newsletter.reply_to:
        headers += f"Reply-To: {_clean(newsletter.reply_to)}\n"
    tail_headers = (
        f"List-Id: {_encoded(newsletter.name)} <{newsletter.slug}.{mail_domain(settings)}>\n"
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click\n"
        "Precedence: bulk\n"
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/alternative; boundary="{content.boundary}"\n'
    )
    return _Wire(
        headers=headers,
        text=_qp(text_body + "\n"),
        html_head=_qp(html_head),
        html_tail=_qp(_HTML_TAIL),
        tail_headers=tail_headers,
    )


def mail_domain(settings: Settings) -> str:
    return settings.mail_from.rsplit("@", 1)[-1].strip(" >") or "localhost"


def message_id(settings: Settings, issue_id: int, delivery_id: int) -> str:
    """The same Message-ID on every attempt, so a retried send is recognisably one message."""
    return f"<issue-{issue_id}.rcpt-{delivery_id}@{mail_domain(settings)}>"


def _rules(article: Article, tiers: frozenset[int]) -> Rules:
    return Rules(article.visibility, tiers, article.free_after, article.free_until,
                 article.gated_at)  # fmt: skip


def _action(access: Access, reader: Entitlements) -> str:
    """The paywall link's words: what would unlock the article for this reader."""
    if access.required == Visibility.members.value:
        return "Sign up free to keep reading"
    if access.reason == Reason.tier_required and reader.paid:
        return "Upgrade to keep reading"
    return "Subscribe to keep reading"


def _body(content: IssueContent, reader: Entitlements, settings: Settings) -> tuple[str, str]:
    parts_html = [content.intro_html] if content.intro_html else []
    parts_text = [plain_text(content.intro_html)] if content.intro_html else []
    article = content.article
    if article is not None:
        url = f"{settings.public_url}/{article.slug}"
        access = decide(_rules(article, content.article_tiers), reader, utcnow())
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
            action = _action(access, reader)
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
    # The token is URL-safe already (base64url and hex, joined by a dot).
    unsubscribe_url = f"{api_url}/api/v1/newsletter/unsubscribe?token={token}"
    wire = content.wire(recipient.reader, settings)
    footer_text = f"\n--\nYou receive {newsletter.name}. Unsubscribe: {unsubscribe_url}"
    footer_html = (
        f'<p style="font-size:13px;color:#666">You receive {escape(newsletter.name)}. '
        f'<a href="{escape(unsubscribe_url, quote=True)}" style="color:#666">Unsubscribe</a></p>\n'
    )
    head = (
        f"{wire.headers}To: {_clean(recipient.email)}\n"
        f"Date: {_date(int(time.time()))}\n"
        f"Message-ID: {message_id(settings, pk(issue.id), recipient.delivery_id)}\n"
        # Only the one-click URL: no mailbox reads a mailto: unsubscribe here (RFC 8058 needs
        # the https one; an address nobody processes would promise what never happens).
        f"List-Unsubscribe: <{_clean(unsubscribe_url)}>\n"
        f"{wire.tail_headers}\n"
    )
    boundary = content.boundary
    return b"".join(
        [
            # UTF-8 only where an address itself is not ASCII (SMTPUTF8); all else is ASCII.
            head.encode("utf-8"),
            _part_head(boundary, "plain"),
            wire.text,
            _qp(footer_text),
            b"\n",
            _part_head(boundary, "html"),
            wire.html_head,
            _qp(footer_html),
            wire.html_tail,
            b"\n",
            f"--{boundary}--\n".encode("ascii"),
        ]
    )


@functools.lru_cache(maxsize=1)
def _date(second: int) -> str:
    # One Date header a second: formatting it per message was a twentieth of a send.
    return formatdate(second, usegmt=True)


def _encoded(value: str) -> str:
    """A header value as ASCII: RFC 2047 words when it is not ASCII already."""
    value = _clean(value)
    return value if value.isascii() else Header(value, "utf-8").encode()


def _clean(value: str) -> str:
    # Header values come from staff and reader input: a line break would start a header.
    return value.replace("\r", " ").replace("\n", " ")


def _part_head(boundary: str, subtype: str) -> bytes:
    return (
        f'--{boundary}\nContent-Type: text/{subtype}; charset="utf-8"\n'
        "Content-Transfer-Encoding: quoted-printable\n\n"
    ).encode("ascii")


def _qp(text: str) -> bytes:
    return binascii.b2a_qp(text.encode("utf-8"), istext=True)
