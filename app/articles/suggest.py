"""Type-ahead suggestions: titles of live articles, tags and authors whose names match.

Titles come from the search index's title column (the last word a prefix), newest first;
tags and authors from the lists every reader already gets (`/tags`, `/authors`), so they
count live articles only and take no query of their own on a cache hit.
"""

from __future__ import annotations

from typing import Any

from app.articles import search, search_index
from app.core.db import Reads

LIMIT = 5


async def titles(reads: Reads, words: list[str]) -> list[dict[str, str]]:
    """Give back the newest live articles whose title matches `words` (the last a prefix)."""
    low, high = search.live_range()
    keys = await search_index.title_keys(reads, words, low, high, LIMIT)
    ids = [search_index.article_id_of(key) for key in keys]
    found = await search_index.titles(reads, ids)
    return [{"slug": found[i][0], "title": found[i][1]} for i in ids if i in found]


def matches(name: str, words: list[str]) -> bool:
    """Say whether `name` has every word, the last one as the beginning of a word."""
    if not words:
        return False
    names = search.terms(name)
    *whole, last = words
    return all(word in names for word in whole) and any(n.startswith(last) for n in names)


def named(rows: list[dict[str, Any]], words: list[str], key: str) -> list[dict[str, Any]]:
    """Give back up to LIMIT of `rows` (tags or authors, busiest first) whose name matches."""
    return [{key: row[key], "name": row["name"]} for row in rows if matches(row["name"], words)][
        :LIMIT
    ]
