"""The newsletter's own transactional email: the double opt-in confirmation."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import urlencode

from app.core.config import Settings


def confirm(settings: Settings, to: str, token: str, names: list[str]) -> EmailMessage:
    link = f"{settings.public_url}/newsletter/confirm?{urlencode({'token': token})}"
    message = EmailMessage()
    message["To"] = to
    message["From"] = settings.mail_from
    message["Subject"] = "Confirm your subscription"
    message["Auto-Submitted"] = "auto-generated"
    what = ", ".join(names) if names else "our newsletter"
    message.set_content(
        f"Please confirm that you want to receive {what}.\n\n"
        f"Confirm: {link}\n\n"
        "If you did not sign up, ignore this email and you will hear nothing more."
    )
    return message
