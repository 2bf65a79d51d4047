"""Billing errors a client can tell apart by `code`."""

from __future__ import annotations

from app.core.errors import (
    AppError,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)


class PlanNotFound(NotFound):
    code, title = "plan_not_found", "Plan not found"


class AlreadySubscribed(Conflict):
    code, title = "already_subscribed", "Already subscribed"


class NoSubscription(NotFound):
    code, title = "no_subscription", "No subscription"


class RedirectNotAllowed(InvalidInput):
    code, title = "redirect_not_allowed", "Redirect URL not allowed"


class PaymentProviderUnavailable(ServiceUnavailable):
    code, title = "payment_provider_unavailable", "Payment provider unavailable"


class WebhookDisabled(NotFound):
    code, title = "not_found", "Not found"


class SignatureMissing(AppError):
    status, code, title = 400, "signature_missing", "Stripe-Signature header missing"


class BadSignature(AppError):
    """No configured secret signs the body, or the signature's time is out of bounds."""

    status, code, title = 401, "invalid_signature", "Invalid webhook signature"

    def __init__(self, detail: str | None = None) -> None:
        # A 401 names how to authenticate (RFC 9110): here, Stripe's signature header.
        super().__init__(detail, headers={"WWW-Authenticate": "Stripe-Signature"})


class InvalidEvent(AppError):
    status, code, title = 400, "invalid_event", "Not a Stripe event"


class WebhookFailed(AppError):
    status, code, title = 500, "webhook_failed", "Webhook could not be applied"


class FormNotFromPage(Forbidden):
    """A local-gateway form posted without the token of the page that shows it."""

    code, title = "csrf_failed", "CSRF token missing or wrong"


class PriceImmutable(InvalidInput):
    code, title = "price_immutable", "A plan's price cannot change"


class TierNotFound(NotFound):
    code, title = "tier_not_found", "Tier not found"


class UnknownTier(InvalidInput):
    """A plan names a tier that does not exist."""

    code, title = "unknown_tier", "No such tier"


class TierSlugTaken(Conflict):
    code, title = "tier_slug_taken", "Tier slug taken"


class TierSlugReserved(InvalidInput):
    code, title = "tier_slug_reserved", "Tier slug reserved"


class TierArchived(Conflict):
    code, title = "tier_archived", "Tier archived"


class TierIsDefault(Conflict):
    """The default tier cannot be archived or stop being the default: make another the
    default first."""

    code, title = "tier_is_default", "The default tier"


class SamePlan(Conflict):
    code, title = "same_plan", "Already on this plan"


class SubscriptionPastDue(Conflict):
    """A plan change waits until the failed payment is fixed (in the billing portal)."""

    code, title = "subscription_past_due", "Payment past due"


class SubscriptionEnded(Conflict):
    code, title = "subscription_ended", "Subscription ended"


class SubscriptionCanceling(Conflict):
    """A subscription set to end at period end changes plan only once it is resumed."""

    code, title = "subscription_canceling", "Subscription ends at period end"


class CurrencyMismatch(InvalidInput):
    """Stripe bills one subscription in one currency."""

    code, title = "currency_mismatch", "Plan in another currency"
