"""The paywall rule as a full table: every visibility x every kind of reader x every time
rule -> {granted, reason}, written out by hand (not worked out by the rule under test)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.access.decision import decide, readable
from app.access.entitlements import (
    ANONYMOUS,
    STAFF,
    Entitlements,
    GrantFacts,
    SubscriptionFacts,
    entitlements_from,
)
from app.access.rules import Rules

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)
GRACE = timedelta(days=7)
DAY = timedelta(days=1)
STANDARD, SUPPORTER, PRINT = 1, 2, 3


def _sub(status: str, tier: int, past_due_since: datetime | None = None) -> SubscriptionFacts:
    return SubscriptionFacts(status, NOW + 10 * DAY, False, past_due_since, tier)


def _reader(subs: list[SubscriptionFacts], grants: list[GrantFacts] | None = None) -> Entitlements:
    return entitlements_from(subs, grants or [], now=NOW, grace=GRACE)


READERS: dict[str, Entitlements] = {
    "anonymous": ANONYMOUS,
    "member": _reader([]),
    "standard": _reader([_sub("active", STANDARD)]),
    "supporter": _reader([_sub("trialing", SUPPORTER)]),
    "two tiers": _reader([_sub("active", STANDARD), _sub("active", PRINT)]),
    "comp, no tier": _reader([], [GrantFacts(NOW - DAY, None, None)]),
    "comp, supporter": _reader([], [GrantFacts(NOW - DAY, None, None, SUPPORTER)]),
    "past_due in grace": _reader([_sub("past_due", STANDARD, NOW - 2 * DAY)]),
    "past_due out of grace": _reader([_sub("past_due", STANDARD, NOW - 9 * DAY)]),
    "canceled": _reader([_sub("canceled", SUPPORTER)]),
    "lapsed (unpaid)": _reader([_sub("unpaid", STANDARD)]),
    "staff": STAFF,
}

PUBLIC, MEMBERS, PAID = "public", "members", "paid"
TIER_S, TIER_SP = "tiers [supporter]", "tiers [supporter, print]"
VISIBILITIES = {
    PUBLIC: Rules(PUBLIC),
    MEMBERS: Rules(MEMBERS),
    PAID: Rules(PAID),
    TIER_S: Rules("tiers", frozenset({SUPPORTER})),
    TIER_SP: Rules("tiers", frozenset({SUPPORTER, PRINT})),
    "unknown": Rules("mystery"),
}

# Reasons: P public, E entitled, SI signin_required, SR subscription_required,
# TR tier_required, LA subscription_lapsed, PF payment_failed.
P, E, SI, SR, TR, LA, PF = (
    "public", "entitled", "signin_required", "subscription_required", "tier_required",
    "subscription_lapsed", "payment_failed",
)  # fmt: skip
GRID = {
    #                        public members paid tiers[S] tiers[S,P] unknown
    "anonymous":             (P, SI, SR, TR, TR, SR),
    "member":                (P, E, SR, TR, TR, SR),
    "standard":              (P, E, E, TR, TR, E),
    "supporter":             (P, E, E, E, E, E),
    "two tiers":             (P, E, E, TR, E, E),
    "comp, no tier":         (P, E, E, E, E, E),
    "comp, supporter":       (P, E, E, E, E, E),
    "past_due in grace":     (P, E, E, TR, TR, E),
    "past_due out of grace": (P, E, PF, PF, PF, PF),
    "canceled":              (P, E, LA, LA, LA, LA),
    "lapsed (unpaid)":       (P, E, LA, LA, LA, LA),
    "staff":                 (P, E, E, E, E, E),
}  # fmt: skip
TABLE = [
    (reader, visibility, reason)
    for reader, reasons in GRID.items()
    for visibility, reason in zip(VISIBILITIES, reasons, strict=True)
]


@pytest.mark.parametrize(("reader", "visibility", "reason"), TABLE)
def test_gating_table(reader: str, visibility: str, reason: str) -> None:
    access = decide(VISIBILITIES[visibility], READERS[reader], NOW)
    assert (access.granted, access.reason) == (reason in (P, E), reason)


def test_an_unknown_visibility_is_required_as_paid() -> None:
    assert decide(VISIBILITIES["unknown"], READERS["member"], NOW).required == "paid"


def test_a_tiers_article_tells_which_tiers_unlock_it() -> None:
    access = decide(VISIBILITIES[TIER_SP], READERS["standard"], NOW)
    assert access.tiers == {SUPPORTER, PRINT}
    assert decide(VISIBILITIES[PAID], READERS["member"], NOW).tiers == frozenset()


def test_access_kept_in_grace_carries_a_notice() -> None:
    assert decide(Rules(PAID), READERS["past_due in grace"], NOW).notice == "payment_failed"
    assert decide(Rules(PAID), READERS["standard"], NOW).notice is None
    # A healthy subscription beside the past-due one: nothing to fix.
    both = _reader([_sub("past_due", SUPPORTER, NOW - DAY), _sub("active", STANDARD)])
    assert decide(Rules(PAID), both, NOW).notice is None


# Time rules: (rules, moment) -> reasons for (anonymous, member, standard, supporter).
LATER, EARLIER = NOW + DAY, NOW - DAY
TIMED = [
    ("embargo, before", Rules(PAID, free_after=LATER), (SR, SR, E, E)),
    ("embargo, after", Rules(PAID, free_after=EARLIER), (P, P, P, P)),
    ("embargoed tier article, before", Rules("tiers", frozenset({SUPPORTER}), free_after=LATER),
     (TR, TR, TR, E)),
    ("embargoed members article, after", Rules(MEMBERS, free_after=EARLIER), (P, P, P, P)),
    ("auto-paywall, before", Rules(PUBLIC, gated_at=LATER), (P, P, P, P)),
    ("auto-paywall, after", Rules(PUBLIC, gated_at=EARLIER), (SR, SR, E, E)),
    ("paid article free for its first days, before", Rules(PAID, gated_at=LATER), (P, P, P, P)),
    ("paid article free for its first days, after", Rules(PAID, gated_at=EARLIER),
     (SR, SR, E, E)),
    ("members article, auto-paywall after", Rules(MEMBERS, gated_at=EARLIER), (SI, E, E, E)),
    ("free while breaking, before", Rules(PAID, free_until=LATER), (P, P, P, P)),
    ("free while breaking, after", Rules(PAID, free_until=EARLIER), (SR, SR, E, E)),
    ("no rule", Rules(PAID), (SR, SR, E, E)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "rules", "reasons"), TIMED, ids=[t[0] for t in TIMED])
def test_time_rules(name: str, rules: Rules, reasons: tuple[str, ...]) -> None:
    for reader, reason in zip(
        ("anonymous", "member", "standard", "supporter"), reasons, strict=True
    ):
        access = decide(rules, READERS[reader], NOW)
        assert (access.granted, access.reason) == (reason in (P, E), reason), reader


@pytest.mark.parametrize(
    ("reader", "visibilities"),
    [
        ("anonymous", ["public"]),
        ("member", ["public", "members"]),
        ("canceled", ["public", "members"]),
        ("standard", ["public", "members", "paid"]),
        ("staff", ["public", "members", "paid"]),
    ],
)
def test_readable_in_search(reader: str, visibilities: list[str]) -> None:
    assert readable(READERS[reader]) == visibilities


def test_readers_sharing_a_cache_key_get_the_same_answers() -> None:
    """Cached answers are shared by readers of one key: their decisions must agree on
    every rule."""
    rules = [*VISIBILITIES.values(), *(r for _, r, _ in TIMED)]

    def answers(reader: Entitlements) -> list[object]:
        return [decide(r, reader, NOW) for r in rules]

    for one in READERS.values():
        for other in READERS.values():
            if one.key == other.key:
                assert answers(one) == answers(other), (one, other)
    # Different entitlements that answer alike may share a key: staff and a full comp.
    assert READERS["staff"].key == READERS["comp, no tier"].key


# The whole product: every visibility x every reader x every time rule. What each time rule
# makes of each visibility is written out here; the answer must then be the one the grid
# above gives for that visibility with no rule.
TIME_CASES = {
    # name: (rules' times, what public / members / paid / tiers / unknown become)
    "no rule": ({}, (PUBLIC, MEMBERS, PAID, "tiers", PAID)),
    "before free_after": ({"free_after": LATER}, (PUBLIC, MEMBERS, PAID, "tiers", PAID)),
    "after free_after": ({"free_after": EARLIER}, (PUBLIC, PUBLIC, PUBLIC, PUBLIC, PUBLIC)),
    "before gated_after": ({"gated_at": LATER}, (PUBLIC, PUBLIC, PUBLIC, PUBLIC, PUBLIC)),
    "after gated_after": ({"gated_at": EARLIER}, (PAID, MEMBERS, PAID, "tiers", PAID)),
    "while free_until": ({"free_until": LATER}, (PUBLIC, PUBLIC, PUBLIC, PUBLIC, PUBLIC)),
    "after free_until": ({"free_until": EARLIER}, (PUBLIC, MEMBERS, PAID, "tiers", PAID)),
}
_BASES = (PUBLIC, MEMBERS, PAID, TIER_SP, "unknown")
FULL = [(case, base, reader) for case in TIME_CASES for base in _BASES for reader in READERS]


@pytest.mark.parametrize(("case", "base", "reader"), FULL)
def test_every_visibility_reader_and_time_rule(case: str, base: str, reader: str) -> None:
    times, becomes = TIME_CASES[case]
    plain = VISIBILITIES[base]
    ruled = Rules(plain.visibility, plain.tiers, **times)
    now_is = becomes[_BASES.index(base)]
    # The visibility in force, written as the grid's column name.
    column = TIER_SP if now_is == "tiers" else now_is
    expected = GRID[reader][list(VISIBILITIES).index(column)]
    access = decide(ruled, READERS[reader], NOW)
    assert (access.granted, access.reason) == (expected in (P, E), expected)
