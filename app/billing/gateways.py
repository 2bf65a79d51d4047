"""Choosing the payment gateway from the settings."""

from __future__ import annotations

from app.billing.gateway import PaymentGateway
from app.billing.local_gateway import LocalGateway
from app.billing.stripe_gateway import StripeGateway
from app.core.config import Settings


def build_gateway(settings: Settings) -> PaymentGateway:
    """Stripe when a secret key is set, else the local gateway (refused in production)."""
    if settings.stripe_secret_key:
        return StripeGateway(settings)
    return LocalGateway(settings)
