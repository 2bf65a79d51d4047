"""Moving a reader's subscription to another plan: another tier, or the same tier's other
interval.

Plans are compared by what they cost a year (a month plan's amount times twelve), which is
the monthly-normalised comparison without fractions. An upgrade applies now, billed as
`billing_proration` says. A downgrade, by default, changes the price at the provider now
without proration, so the next invoice bills the lower price, and our copy keeps the higher
plan (`kept_plan_id`) until the period paid for ends (`kept_until`): the access model grants
its tier until then. The provider's answer is copied by the webhook's own copy rule, which
writes the plan and the history row; the local gateway's event goes through the webhook path
before that copy, so both find the same state.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts.models import User
from app.billing import events, provider_state, repository
from app.billing.errors import (
    CurrencyMismatch,
    NoSubscription,
    PaymentProviderUnavailable,
    PlanNotFound,
    SamePlan,
    SubscriptionCanceling,
    SubscriptionEnded,
    SubscriptionPastDue,
)
from app.billing.gateway import GatewayError, PaymentGateway, PriceChange
from app.billing.models import Interval, Plan, Subscription
from app.billing.schemas import MySubscription
from app.billing.service import reader_subscription
from app.core.config import Proration, Settings
from app.core.db import Database, pk, utcnow

# The statuses a plan can change in; past_due is refused with its own code.
_CHANGEABLE = frozenset({"active", "trialing"})
_LIVE = _CHANGEABLE | {"past_due"}
# Without a client key, requests in one window share the provider's key (a double click).
_KEY_WINDOW = timedelta(minutes=30)


def yearly_amount(amount: int, interval: str) -> int:
    """What a price costs a year, to compare a month plan with a year plan."""
    return amount * 12 if interval == Interval.month.value else amount


@dataclass(frozen=True)
class Price:
    """What a plan costs: the amount per interval."""

    plan_id: int | None
    amount: int
    interval: str

    @property
    def yearly(self) -> int:
        return yearly_amount(self.amount, self.interval)


@dataclass(frozen=True)
class Decision:
    """How a change is made: billed now with `proration`, and what our copy keeps after."""

    direction: Literal["upgrade", "downgrade"]
    proration: Proration
    kept_plan_id: int | None
    kept_until: datetime | None


def decide(
    current: Price,
    target: Price,
    *,
    kept: Price | None,
    kept_until: datetime | None,
    period_end: datetime | None,
    now: datetime,
    settings: Settings,
) -> Decision:
    """Decide how moving from `current` to `target` is billed and what is kept after.

    A plan kept from an earlier downgrade stays kept while it is worth more than the target,
    and a target it covers is billed without proration: that period is paid for already. A
    downgrade waits for the period's end only when the interval stays: Stripe starts a new
    period and bills it at once when the interval changes, so an unprorated change would
    charge the new price in full with no credit for the time paid; that one applies now,
    prorated as set.
    """
    direction: Literal["upgrade", "downgrade"] = (
        "upgrade" if target.yearly >= current.yearly else "downgrade"
    )
    still_kept = kept is not None and kept_until is not None and now < kept_until
    if kept is not None and still_kept and target.yearly <= kept.yearly:
        back_to_kept = target.plan_id == kept.plan_id
        return Decision(
            direction,
            Proration.none,
            None if back_to_kept else kept.plan_id,
            None if back_to_kept else kept_until,
        )
    deferred = (
        direction == "downgrade"
        and settings.billing_downgrade_at_period_end
        and target.interval == current.interval
        and period_end is not None
        and now < period_end
    )
    if deferred:
        return Decision(direction, Proration.none, current.plan_id, period_end)
    return Decision(direction, settings.billing_proration, None, None)


async def change_plan(
    read: AsyncSession,
    session: AsyncSession,
    db: Database,
    gateway: PaymentGateway,
    settings: Settings,
    user: User,
    *,
    plan_id: int,
    idempotency_key: str | None,
) -> MySubscription:
    """Move the reader's live subscription to another plan on sale; give back the reader's
    subscription as it is then. The same Idempotency-Key again answers without a change.

    Everything is read, and the provider asked, before the write session's first statement:
    no write lock is held while the provider answers (the local gateway's event is applied
    in transactions of its own meanwhile).
    """
    sub = await _live_subscription(read, pk(user.id))
    asked = _asked_key(idempotency_key, plan_id)
    if asked is not None and sub.change_key == asked:
        return await reader_subscription(session, settings, user)
    target = await _target_plan(read, sub, plan_id)
    decision = await _decision(read, sub, target, settings)
    change = PriceChange(
        subscription_id=sub.provider_subscription_id,
        price_id=str(target.stripe_price_id),
        amount=target.amount,
        currency=target.currency,
        interval=target.interval,
        proration=decision.proration,
        idempotency_key=_provider_key(sub, target, idempotency_key),
    )
    try:
        state = await gateway.change_price(change)
    except GatewayError as exc:
        raise PaymentProviderUnavailable("The payment provider is unreachable.") from exc
    event = gateway.event_of_change(sub.provider_subscription_id)
    if event is not None:
        await events.receive(db, gateway, settings, event)
    copied = await provider_state.copy_and_load(
        session, state, user_id=sub.user_id, provider=sub.provider, event_id=None
    )
    copied.kept_plan_id, copied.kept_until = decision.kept_plan_id, decision.kept_until
    copied.change_key = asked
    await repository.save(session, copied)
    return await reader_subscription(session, settings, user)


async def _live_subscription(read: AsyncSession, user_id: int) -> Subscription:
    """The reader's one live subscription; refusals say why there is none to change."""
    subs = await repository.subscriptions_of(read, user_id)
    live = next((sub for sub in subs if sub.status in _LIVE), None)
    if live is None:
        if subs:
            raise SubscriptionEnded("The subscription has ended; subscribe again instead.")
        raise NoSubscription("There is no subscription to change.")
    if live.status not in _CHANGEABLE:
        raise SubscriptionPastDue(
            "The last payment failed; fix it in the billing portal first.",
            extra={"portal": "/api/v1/billing/portal"},
        )
    if live.cancel_at_period_end:
        raise SubscriptionCanceling("The subscription ends at period end; resume it first.")
    return live


async def _target_plan(read: AsyncSession, sub: Subscription, plan_id: int) -> Plan:
    plan = await repository.plan(read, plan_id)
    if plan is None or not plan.active or not plan.stripe_price_id:
        raise PlanNotFound("No such plan on sale.")
    if plan.id == sub.plan_id:
        raise SamePlan("The subscription is on this plan already.")
    if plan.currency != sub.currency:
        raise CurrencyMismatch(
            f"The subscription is billed in {sub.currency.upper()}; choose a plan in it."
        )
    return plan


async def _decision(
    read: AsyncSession, sub: Subscription, target: Plan, settings: Settings
) -> Decision:
    kept = await repository.plan(read, sub.kept_plan_id) if sub.kept_plan_id else None
    return decide(
        # What the reader pays now is our copy's amount, whatever became of its plan row.
        Price(sub.plan_id, sub.amount, sub.interval),
        Price(target.id, target.amount, target.interval),
        kept=Price(kept.id, kept.amount, kept.interval) if kept else None,
        kept_until=sub.kept_until,
        period_end=sub.current_period_end,
        now=utcnow(),
        settings=settings,
    )


def _digest(parts: list[object]) -> str:
    return hashlib.sha256(json.dumps(parts, separators=(",", ":")).encode()).hexdigest()[:32]


def _asked_key(client_key: str | None, plan_id: int) -> str | None:
    """What a client's key asked for, as our copy remembers it (None without a key)."""
    return _digest([client_key, plan_id]) if client_key else None


def _provider_key(sub: Subscription, target: Plan, client_key: str | None) -> str:
    # The plan moved from is in the key, so moving back later is another change at the
    # provider, never an old answer replayed; requests without a client key share one per
    # window, so a double click changes the price once.
    made_of: list[object] = [sub.plan_id, target.id, target.stripe_price_id]
    if client_key is None:
        made_of.append(int(utcnow().timestamp() // _KEY_WINDOW.total_seconds()))
    else:
        made_of.append(client_key)
    return f"broadsheet-change-{sub.id}-{_digest(made_of)}"
