"""The paywall rule: one pure function from an article's requirement, a reader's
entitlements and the time to access, with a reason that says what would unlock it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app.access.entitlements import Entitlements
from app.access.rules import Rules, Visibility


class Reason:
    public = "public"
    entitled = "entitled"
    signin_required = "signin_required"
    subscription_required = "subscription_required"
    tier_required = "tier_required"
    subscription_lapsed = "subscription_lapsed"
    payment_failed = "payment_failed"


@dataclass(frozen=True)
class Access:
    """`required`: the visibility in force; `tiers`: the tiers that would unlock a `tiers`
    article (empty: any paid tier would); `notice`: `payment_failed` while a past-due
    subscription still gives access."""

    granted: bool
    required: str
    reason: str
    tiers: frozenset[int] = frozenset()
    notice: str | None = None


def decide(rules: Rules, reader: Entitlements, now: datetime) -> Access:
    """Give back whether `reader` may read an article with `rules` at `now`, and why."""
    required = rules.required(now)
    tiers = rules.tiers if required is Visibility.tiers else frozenset()
    if required is Visibility.public:
        return Access(True, required.value, Reason.public)
    if required is Visibility.members:
        if reader.signed_in:
            return Access(True, required.value, Reason.entitled)
        return Access(False, required.value, Reason.signin_required)
    # A `tiers` article with no tier listed unlocks for nobody but staff: fail closed.
    granted = reader.paid if required is Visibility.paid else reader.has_any(tiers)
    if granted:
        notice = Reason.payment_failed if reader.grace_until is not None else None
        return Access(True, required.value, Reason.entitled, tiers, notice)
    return Access(False, required.value, _refusal(required, reader), tiers)


def _refusal(required: Visibility, reader: Entitlements) -> str:
    if reader.payment_failed:
        return Reason.payment_failed
    if reader.lapsed:
        return Reason.subscription_lapsed
    if required is Visibility.tiers:
        return Reason.tier_required
    return Reason.subscription_required


def readable(reader: Entitlements) -> list[str]:
    """The visibilities whose full text `reader` may match in search (the index holds no
    body of a `tiers` article, and indexes one a time rule may gate as `paid`)."""
    out = [Visibility.public.value]
    if reader.signed_in:
        out.append(Visibility.members.value)
    if reader.paid:
        out.append(Visibility.paid.value)
    return out
