"""Billing's request dependencies: the app's payment gateway, and a webhook's event as the
gateway verified it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from app.billing.errors import WebhookDisabled
from app.billing.gateway import PaymentGateway, WebhookEvent
from app.core.errors import PayloadTooLarge

MAX_BODY_BYTES = 1_048_576


async def get_gateway(request: Request) -> PaymentGateway:
    """Give back the running app's payment gateway."""
    gateway: PaymentGateway = request.app.state.gateway
    return gateway


GatewayDep = Annotated[PaymentGateway, Depends(get_gateway)]


async def verified_event(
    request: Request,
    gateway: GatewayDep,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> WebhookEvent:
    """Give back the event a webhook request carries, verified by the gateway: 404 when it
    takes no webhooks, 413 for a body over 1 MB, else what `parse_webhook` says (400 no
    signature or no event, 401 a signature that does not hold)."""
    if not gateway.accepts_webhooks:
        raise WebhookDisabled("Not found")
    # Streamed under its own cap, so an oversized body is refused before it is all read.
    payload = bytearray()
    async for chunk in request.stream():
        payload += chunk
        if len(payload) > MAX_BODY_BYTES:
            raise PayloadTooLarge("Webhook bodies are limited to 1 MB.")
    return gateway.parse_webhook(bytes(payload), stripe_signature)


VerifiedEvent = Annotated[WebhookEvent, Depends(verified_event)]
