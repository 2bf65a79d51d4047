"""Billing notices mailed to readers: a failed payment, with the way to fix it."""

from __future__ import annotations

from email.message import EmailMessage

from app.core.config import Settings


def payment_failed(settings: Settings, to: str) -> EmailMessage:
    """The notice sent once per failed invoice attempt, pointing at the billing page."""
    link = f"{settings.public_url}/account/billing"
    message = EmailMessage()
    message["To"] = to
    message["From"] = settings.mail_from
    message["Subject"] = "Your payment did not go through"
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "We could not take the payment for your subscription. Your access continues for now "
        "while we retry.\n\n"
        f"Update your card or billing details here: {link}\n\n"
        "Nothing has been deleted; if the payment keeps failing, your subscription will end "
        "and you keep your free account."
    )
    return message
