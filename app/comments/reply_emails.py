"""Reply emails (off by default) and their signed, login-free unsubscribe links."""

from __future__ import annotations

import hmac
from email.message import EmailMessage
from urllib.parse import urlencode

from app.articles.models import Article
from app.core.config import Settings
from app.core.security import sign

PURPOSE = "comment-reply-emails"


def token(settings: Settings, user_id: int) -> str:
    return f"{user_id}.{sign(settings.jwt_secret, PURPOSE, str(user_id))[:32]}"


def read_token(settings: Settings, value: str) -> int | None:
    """Give back the user id a token stands for, or None when it is not ours."""
    user, _, signature = value.partition(".")
    if not user.isdigit() or len(signature) != 32:
        return None
    expected = sign(settings.jwt_secret, PURPOSE, user)[:32]
    return int(user) if hmac.compare_digest(expected, signature) else None


def reply_email(
    settings: Settings, *, to: str, user_id: int, replier: str, article: Article, excerpt: str
) -> EmailMessage:
    link = f"{settings.public_url}/{article.slug}#comments"
    query = urlencode({"token": token(settings, user_id)})
    stop = f"{settings.api_url}/api/v1/comments/reply-emails/unsubscribe?{query}"
    message = EmailMessage()
    message["To"] = to
    message["From"] = settings.mail_from
    # A name stored before names were held to one line must not break the header.
    replier = " ".join(replier.split())
    message["Subject"] = f"{replier or 'Someone'} replied to your comment"
    message["Auto-Submitted"] = "auto-generated"
    message["List-Unsubscribe"] = f"<{stop}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(
        f'{replier or "Someone"} replied to your comment on "{article.title}":\n\n'
        f"{excerpt}\n\nRead the conversation: {link}\n\nStop these emails: {stop}"
    )
    return message
