"""The transactional emails of accounts: sign-in links, verification, password reset."""

from __future__ import annotations

from email.message import EmailMessage
from html import escape
from urllib.parse import urlencode

from app.core.config import Settings


def _link(settings: Settings, path: str, token: str) -> str:
    return f"{settings.public_url}{path}?{urlencode({'token': token})}"


def _message(
    settings: Settings, *, to: str, subject: str, lines: list[str], link: str, action: str
) -> EmailMessage:
    message = EmailMessage()
    message["To"] = to
    message["From"] = settings.mail_from
    message["Subject"] = subject
    # Transactional mail must not be auto-replied to or treated as a list.
    message["Auto-Submitted"] = "auto-generated"
    text = "\n\n".join(
        [*lines, f"{action}: {link}", "If you did not ask for this, ignore this email."]
    )
    message.set_content(text)
    paragraphs = "".join(f"<p>{escape(line)}</p>" for line in lines)
    message.add_alternative(
        f"<!doctype html><html><body>{paragraphs}"
        f'<p><a href="{escape(link, quote=True)}">{escape(action)}</a></p>'
        "<p>If you did not ask for this, ignore this email.</p></body></html>",
        subtype="html",
    )
    return message


def magic_link(settings: Settings, to: str, token: str, *, new_account: bool) -> EmailMessage:
    minutes = settings.magic_link_minutes
    first = (
        "Welcome! Confirm your email to create your account."
        if new_account
        else "Here is your sign-in link."
    )
    return _message(
        settings,
        to=to,
        subject="Your sign-in link",
        lines=[first, f"The link works once and expires in {minutes} minutes."],
        link=_link(settings, "/auth/magic", token),
        action="Sign in",
    )


def verify_email(settings: Settings, to: str, token: str) -> EmailMessage:
    return _message(
        settings,
        to=to,
        subject="Confirm your email address",
        lines=["Please confirm this is your email address."],
        link=_link(settings, "/auth/verify-email", token),
        action="Confirm email",
    )


def email_change(settings: Settings, to: str, token: str) -> EmailMessage:
    return _message(
        settings,
        to=to,
        subject="Confirm your new email address",
        lines=["You asked to use this address for your account. Confirm to finish the change."],
        link=_link(settings, "/auth/verify-email", token),
        action="Confirm new email",
    )


def password_reset(settings: Settings, to: str, token: str) -> EmailMessage:
    minutes = settings.password_reset_minutes
    return _message(
        settings,
        to=to,
        subject="Reset your password",
        lines=[f"Someone asked to reset your password. The link expires in {minutes} minutes."],
        link=_link(settings, "/auth/reset-password", token),
        action="Choose a new password",
    )


def email_changed(settings: Settings, old: str, new: str) -> EmailMessage:
    """The notice to an account's former address that it moved (sent once it has)."""
    message = EmailMessage()
    message["To"] = old
    message["From"] = settings.mail_from
    message["Subject"] = "Your account's email address was changed"
    message["Auto-Submitted"] = "auto-generated"
    name, _, domain = new.partition("@")
    message.set_content(
        f"Your account now uses a new address ({name[:2]}…@{domain}) instead of this one.\n\n"
        "If you did not make this change, reset your password from the sign-in page at once "
        f"and reply to this email: {settings.public_url}/auth/reset-password"
    )
    return message
