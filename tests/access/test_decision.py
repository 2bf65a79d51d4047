"""The paywall rule as a full table: every visibility against every reader level."""

from __future__ import annotations

import pytest

from app.access.decision import accessible_visibilities, decide
from app.access.levels import AccessLevel

A, M, P = AccessLevel.anonymous, AccessLevel.member, AccessLevel.paid

TABLE = [
    ("public", A, True, "public"),
    ("public", M, True, "public"),
    ("public", P, True, "public"),
    ("members", A, False, "signin_required"),
    ("members", M, True, "entitled"),
    ("members", P, True, "entitled"),
    ("paid", A, False, "subscription_required"),
    ("paid", M, False, "subscription_required"),
    ("paid", P, True, "entitled"),
    ("unknown-visibility", P, True, "entitled"),
    ("unknown-visibility", M, False, "subscription_required"),
]


@pytest.mark.parametrize(("visibility", "level", "granted", "reason"), TABLE)
def test_gating_table(visibility: str, level: AccessLevel, granted: bool, reason: str) -> None:
    access = decide(visibility, level)
    assert access.granted is granted
    assert access.reason == reason


@pytest.mark.parametrize(
    ("level", "readable"),
    [(A, ["public"]), (M, ["public", "members"]), (P, ["public", "members", "paid"])],
)
def test_accessible_visibilities(level: AccessLevel, readable: list[str]) -> None:
    assert accessible_visibilities(level) == readable
