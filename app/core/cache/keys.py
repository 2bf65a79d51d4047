"""The response cache's keys: one function per kind of answer, used by the routes and by the
middleware that answers hits before routing, so both always find the same entry."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlencode


def article_key(reader: str, slug: str) -> str:
    """The key of `slug`'s page as rendered for readers whose entitlements have the key
    `reader` (access.entitlements.Entitlements.key)."""
    return f"article:{reader}:{slug}"


def list_key(query: str) -> str:
    """The key of the archive page asked for by `query` (the same for all readers)."""
    return f"list?{query}"


def search_key(readable: str, query: str) -> str:
    """The key of a search's page: results depend on the canonical query (words, filters,
    order, page) and on what the reader may match (`readable`, the visibilities joined)."""
    return f"search:{readable}:{query}"


def suggest_key(words: list[str]) -> str:
    """The key of type-ahead suggestions: the same for every reader."""
    return f"suggest:{' '.join(words)}"


def offer_key(tier_ids: frozenset[int] | None) -> str:
    """The key of a paywall's offer: the tiers on sale among `tier_ids` (None: all)."""
    return "offer:*" if tier_ids is None else "offer:" + ",".join(map(str, sorted(tier_ids)))


def canonical_query(params: list[tuple[str, object]]) -> str:
    """The one spelling of a validated query: present parameters in declared order, values
    as parsed, so `?limit=020&junk` and friends cannot fill the cache with copies."""
    return urlencode(
        [
            (name, value.isoformat() if isinstance(value, datetime) else str(value))
            for name, value in params
            if value is not None
        ]
    )
