"""The paywall rule: one pure function from visibility and reader level to access."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from app.access.levels import AccessLevel


class Visibility(StrEnum):
    """What an article requires of its reader (the access model's, stored on articles)."""

    public = "public"
    members = "members"
    paid = "paid"


REQUIRED_LEVEL = {
    Visibility.public: AccessLevel.anonymous,
    Visibility.members: AccessLevel.member,
    Visibility.paid: AccessLevel.paid,
}


@dataclass(frozen=True)
class Access:
    granted: bool
    required: str
    reason: str


def decide(visibility: str, level: AccessLevel) -> Access:
    """Give back whether a reader at `level` may read an article of `visibility`, and why."""
    try:
        wanted = Visibility(visibility)
    except ValueError:
        # An unknown visibility is treated as the strictest: fail closed.
        wanted = Visibility.paid
    required = REQUIRED_LEVEL[wanted]
    if level >= required:
        return Access(True, wanted.value, "public" if wanted is Visibility.public else "entitled")
    if level is AccessLevel.anonymous:
        reason = "signin_required" if wanted is Visibility.members else "subscription_required"
    else:
        reason = "subscription_required"
    return Access(False, wanted.value, reason)


def accessible_visibilities(level: AccessLevel) -> list[str]:
    """Give back the visibilities a reader at `level` may read in full."""
    return [v.value for v, needed in REQUIRED_LEVEL.items() if level >= needed]
