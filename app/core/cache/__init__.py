"""The response cache: store, keys, HTTP headers, the before-routing middleware, freshness
polling and the shared content version that services bump when readers' answers change."""

from app.core.cache.http import cached_response, entry_response
from app.core.cache.keys import article_key, canonical_query, list_key, offer_key, search_key
from app.core.cache.store import Answer, Entry, ResponseCache, etag_of
from app.core.cache.version import invalidate_on_commit

__all__ = [
    "Answer",
    "Entry",
    "ResponseCache",
    "article_key",
    "cached_response",
    "canonical_query",
    "entry_response",
    "etag_of",
    "invalidate_on_commit",
    "list_key",
    "offer_key",
    "search_key",
]
