"""Building each recipient's message: the paywall holds in email too.

Entitled recipients get the article's full text; the others get the free part and a
"Subscribe to keep reading" link. Headers make every message a good list citizen: a stable
Message-ID per (issue, recipient), List-Id, and RFC 8058 one-click unsubscribe.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import EmailMessage
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


def mail_domain(settings: Settings) -> str:
    return settings.mail_from.rsplit("@", 1)[-1].strip(" >") or "localhost"


def message_id(settings: Settings, issue_id: int, delivery_id: int) -> str:
    """The same Message-ID on every attempt, so a retried send is recognisably one message."""
    return f"<issue-{issue_id}.rcpt-{delivery_id}@{mail_domain(settings)}>"


def _body(content: IssueContent, recipient: Recipient, settings: Settings) -> tuple[str, str]:
    parts_html = [content.intro_html] if content.intro_html else []
    parts_text = [plain_text(content.intro_html)] if content.intro_html else []
    article = content.article
    if article is not None:
        url = f"{settings.public_url}/{article.slug}"
        access = decide(article.visibility, recipient.level)
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
    """Give back the message for one recipient."""
    newsletter, issue = content.newsletter, content.issue
    token = tokens.make(
        settings.jwt_secret,
        subscriber_id=recipient.subscriber_id,
        newsletter_id=pk(newsletter.id),
        issue_id=pk(issue.id),
    )
    unsubscribe_url = f"{api_url}/api/v1/newsletter/unsubscribe?{urlencode({'token': token})}"
    domain = mail_domain(settings)
    html_body, text_body = _body(content, recipient, settings)
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
    message = EmailMessage()
    sender = newsletter.sender_email or settings.mail_from
    message["From"] = (
        formataddr((newsletter.sender_name, sender))
        if newsletter.sender_name and "<" not in sender
        else sender
    )
    message["To"] = recipient.email
    message["Subject"] = issue.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(settings, pk(issue.id), recipient.delivery_id)
    if newsletter.reply_to:
        message["Reply-To"] = newsletter.reply_to
    message["List-Id"] = f"{newsletter.name} <{newsletter.slug}.{domain}>"
    mailto = f"mailto:unsubscribe@{domain}?subject={quote('unsubscribe ' + token)}"
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>, <{mailto}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message["Precedence"] = "bulk"
    message.set_content(text_body + footer_text)
    message.add_alternative(
        '<!doctype html><html><body style="margin:0;padding:0;background:#f6f5f1">'
        f'{preheader}<table role="presentation" width="100%" cellpadding="0" cellspacing="0">'
        f'<tr><td align="center"><table role="presentation" width="600" '
        f'style="max-width:600px;background:#fff;padding:24px;{FONT}"><tr><td style="{FONT}">'
        f"{html_body}{footer_html}</td></tr></table></td></tr></table></body></html>",
        subtype="html",
    )
    return message
