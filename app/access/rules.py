"""What an article requires of its reader, and how that changes with time.

An article's requirement is its visibility (`public`, `members`, `paid`, or `tiers` with a
list of tier ids) and three optional times:

- `free_after`, an embargo: the article is gated by its visibility until then, public after;
- `free_until`, a window while it is breaking news: public until then, gated after;
- `gated_at`, an automatic paywall by age: public until then, gated after (by its
  visibility, or `paid` for an article published as public). Worked out when the article
  is written, from its publication time and the days of its own rule or the publication's.

The rule is evaluated when a reader asks, so no job has to run for it to come true; every
cached answer goes when the next of these times passes (articles/live.py NEXT_CHANGE_SQL,
read by core/cache/freshness.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class Visibility(StrEnum):
    """What an article requires of its reader, before its time rules."""

    public = "public"
    members = "members"
    paid = "paid"
    tiers = "tiers"


GATED = frozenset({Visibility.members, Visibility.paid, Visibility.tiers})


@dataclass(frozen=True)
class Rules:
    visibility: str
    tiers: frozenset[int] = frozenset()
    free_after: datetime | None = None
    free_until: datetime | None = None
    gated_at: datetime | None = None

    def required(self, now: datetime) -> Visibility:
        """The visibility in force at `now`; an unknown one is `paid` (fail closed)."""
        try:
            base = Visibility(self.visibility)
        except ValueError:
            base = Visibility.paid
        if self.free_after is not None and now >= self.free_after:
            return Visibility.public
        if self.free_until is not None and now < self.free_until:
            return Visibility.public
        if self.gated_at is not None:
            if now < self.gated_at:
                return Visibility.public
            return Visibility.paid if base is Visibility.public else base
        return base


def gated_at(
    visibility: str,
    published_at: datetime | None,
    own_days: int | None,
    follows_default: bool,
    default_days: int | None,
) -> datetime | None:
    """When an article's automatic paywall closes: `own_days` after publication, or the
    publication's `default_days` for a public article that follows the default."""
    if published_at is None:
        return None
    if own_days is not None:
        return published_at + timedelta(days=own_days)
    if follows_default and default_days is not None and visibility == Visibility.public.value:
        return published_at + timedelta(days=default_days)
    return None
