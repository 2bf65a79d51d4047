"""A reader's entitlements: the one rule that says what their subscriptions and grants give.

A signed-in reader is entitled to a set of paid tiers: the tier of each entitling
subscription's plan (and, after a downgrade, the higher plan's tier until the period it was
paid for ends), and of each running complimentary grant (a grant without a tier gives every
tier, as comps did before tiers). The rule is pure (`entitlements_from`) so it can be tested
as a table; billing's reads feed it from the database. Unknown subscription statuses grant
nothing (fail closed).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import IntEnum

log = logging.getLogger("broadsheet.access")

ENTITLING = frozenset({"active", "trialing"})
KNOWN_STATUSES = frozenset(
    {"active", "trialing", "past_due", "canceled", "unpaid", "incomplete",
     "incomplete_expired", "paused"}
)  # fmt: skip
# Statuses of a subscription that was paid for once and has ended: the reader is offered to
# renew, not to subscribe for the first time.
ENDED = frozenset({"canceled", "unpaid", "incomplete_expired", "paused"})


class AccessLevel(IntEnum):
    """The coarse summary of entitlements: what profiles and staff lists show."""

    anonymous = 0
    member = 1
    paid = 2

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class SubscriptionFacts:
    status: str
    current_period_end: datetime | None
    cancel_at_period_end: bool
    past_due_since: datetime | None
    tier_id: int | None = None
    # After a downgrade at period end: the plan paid for until `kept_until` keeps its tier.
    kept_tier_id: int | None = None
    kept_until: datetime | None = None


@dataclass(frozen=True)
class GrantFacts:
    starts_at: datetime
    ends_at: datetime | None
    revoked_at: datetime | None
    tier_id: int | None = None  # None: every tier


@dataclass(frozen=True)
class Entitlements:
    """What one reader may read, at one moment.

    `tiers` are paid tier ids; `every_tier` (staff, a grant without a tier) stands for all of
    them, present and future. `payment_failed` and `lapsed` say why a reader without paid
    access has none (a subscription past due beyond its grace, or one that ended), so the
    paywall can offer the right next step; `grace_until` is set while a past-due
    subscription still gives access (the answer carries a notice)."""

    signed_in: bool = False
    tiers: frozenset[int] = frozenset()
    every_tier: bool = False
    untiered: bool = False
    lapsed: bool = False
    payment_failed: bool = False
    grace_until: datetime | None = None

    @property
    def paid(self) -> bool:
        """Entitled to some paid tier (what `paid` visibility asks for)."""
        return self.every_tier or self.untiered or bool(self.tiers)

    def has_any(self, tiers: Iterable[int]) -> bool:
        """Entitled to at least one of `tiers`."""
        return self.every_tier or not self.tiers.isdisjoint(tiers)

    @property
    def level(self) -> AccessLevel:
        if self.paid:
            return AccessLevel.paid
        return AccessLevel.member if self.signed_in else AccessLevel.anonymous

    @property
    def key(self) -> str:
        """A short name of exactly what decides this reader's answers: cached answers are
        shared by readers of one key and never reach another."""
        if not self.signed_in:
            return "a"
        head = "*" if self.every_tier else ",".join(map(str, sorted(self.tiers))) or "m"
        flags = "".join(
            letter
            for letter, on in (("u", self.untiered), ("l", self.lapsed),
                               ("f", self.payment_failed), ("g", self.grace_until is not None))
            if on
        )  # fmt: skip
        return f"{head}:{flags}" if flags else head


ANONYMOUS = Entitlements()
STAFF = Entitlements(signed_in=True, every_tier=True)


def subscription_entitles(sub: SubscriptionFacts, now: datetime, grace: timedelta) -> bool:
    """Tell whether one subscription gives paid access at `now`."""
    if sub.status in ENTITLING:
        # A canceled-at-period-end subscription runs until the period ends; a period that is
        # long over means we missed the cancellation, so it no longer counts.
        return sub.current_period_end is None or now < sub.current_period_end + grace
    if sub.status == "past_due":
        started = sub.past_due_since or sub.current_period_end
        return started is not None and now < started + grace
    if sub.status not in KNOWN_STATUSES:
        log.warning("unknown subscription status %r treated as not entitling", sub.status)
    return False


def grant_entitles(grant: GrantFacts, now: datetime) -> bool:
    return (
        grant.revoked_at is None
        and grant.starts_at <= now
        and (grant.ends_at is None or now < grant.ends_at)
    )


def _tiers_of(sub: SubscriptionFacts, now: datetime) -> set[int | None]:
    tiers: set[int | None] = {sub.tier_id}
    if sub.kept_tier_id is not None and sub.kept_until is not None and now < sub.kept_until:
        tiers.add(sub.kept_tier_id)
    return tiers


def entitlements_from(
    subscriptions: Sequence[SubscriptionFacts],
    grants: Sequence[GrantFacts],
    *,
    now: datetime,
    grace: timedelta,
) -> Entitlements:
    """Give back a signed-in reader's entitlements from their subscriptions and grants."""
    entitling = [s for s in subscriptions if subscription_entitles(s, now, grace)]
    running = [g for g in grants if grant_entitles(g, now)]
    tiers = {t for s in entitling for t in _tiers_of(s, now)} | {g.tier_id for g in running}
    paid = bool(tiers)
    # Access that hangs on a past-due subscription alone carries a notice until grace ends.
    grace_until = None
    if paid and not running and all(s.status == "past_due" for s in entitling):
        grace_until = min(
            started + grace
            for s in entitling
            if (started := s.past_due_since or s.current_period_end) is not None
        )
    return Entitlements(
        signed_in=True,
        tiers=frozenset(t for t in tiers if t is not None),
        every_tier=any(g.tier_id is None for g in running),
        # A plan since deleted still pays for `paid` articles, though for no tier by name.
        untiered=None in tiers and not any(g.tier_id is None for g in running),
        lapsed=not paid and any(s.status in ENDED for s in subscriptions),
        payment_failed=not paid and any(s.status == "past_due" for s in subscriptions),
        grace_until=grace_until,
    )
