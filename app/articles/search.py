"""Full-text search behind one interface: SQLite FTS5 or PostgreSQL tsvectors (search_index.py).

Each article is indexed with its public text (title, subtitle, teaser, tag and author names)
and its full text. Readers match the full text only of articles they may read; for every
other article only the public text can match, so a search never reveals words behind the
paywall. Snippets are cut from the public fields (standfirst and teaser) on both engines.
This module turns a reader's query into a lookup, ranks and pages it, and counts it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from html import escape

from app.articles import search_index
from app.articles.search_index import LIVE_FLOOR, Lookup
from app.core.db import Reads, utcnow
from app.core.errors import InvalidInput
from app.core.pagination import InvalidCursor, decode_cursor, encode_cursor

# Letters and digits only: every other character (quotes, *, :, &, |, !, parentheses, _)
# separates words, so no search syntax of either engine can reach it.
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TERMS = 12
MAX_WORD = 64
# Relevance ranks the newest WINDOW matches, and its pages end there (a cursor past it: 400).
# A window, not every match, is what keeps a common word as cheap as a rare one.
WINDOW = 300
# The total is counted up to TOTAL_CAP matches by date, and by relevance up to the WINDOW its
# pages reach; past that it says `total_capped`. A common word's count tests entries until one
# more than the cap matches, which at 1,000 took PostgreSQL longer than the walk itself
# (BENCHMARKS.md), so a relevance count stops where its pages do.
TOTAL_CAP = 1000
PREFIX_MIN = 2  # a shorter last word is matched whole (one letter would match half the index)


class SearchPageOutOfRange(InvalidInput):
    status, code, title = 400, "search_page_out_of_range", "Past the last page of a search"


def public_text(title: str, subtitle: str, excerpt: str, tags: list[str]) -> str:
    """Give back revision 0002's public text (its migrations use it): title, subtitle,
    teaser and tags."""
    return " ".join([title, subtitle, excerpt, *tags])


def public_words(subtitle: str, excerpt: str, tags: list[str], authors: list[str]) -> str:
    """Give back an entry's public text besides its title: standfirst, teaser, tag and author
    names (so tags and authors are found by name)."""
    return " ".join([subtitle, excerpt, *tags, *authors])


def terms(query: str) -> list[str]:
    """Give back the words of a user query; all search syntax is dropped, never interpreted."""
    words = [word.lower() for word in _WORD.findall(query) if len(word) <= MAX_WORD]
    return words[:MAX_TERMS]


def live_range(
    since: datetime | None = None, until: datetime | None = None, *, now: datetime | None = None
) -> tuple[int, int]:
    """Give back the sort keys of articles live now and published between `since`/`until`."""
    ceiling = search_index.second_key(now or utcnow())
    if until is not None:
        ceiling = min(ceiling, search_index.second_key(until))
    floor = LIVE_FLOOR
    if since is not None:
        floor = max(floor, search_index.second_key(since))
    return floor, ceiling | (LIVE_FLOOR - 1)


def lookup(
    words: list[str],
    readable: list[str],
    *,
    tag_id: int | None = None,
    author_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> Lookup:
    """Give back the index lookup of a reader's words and filters."""
    low, high = live_range(since, until)
    return Lookup(
        words=tuple(words),
        prefix=bool(words) and len(words[-1]) >= PREFIX_MIN,
        readable=tuple(readable),
        tag_id=tag_id,
        author_id=author_id,
        low=low,
        high=high,
    )


@dataclass(frozen=True)
class Ask:
    """A reader's search as the route parsed it: words, order and filters."""

    words: list[str]
    by_date: bool = False
    tag: str | None = None
    author: int | None = None
    since: datetime | None = None
    until: datetime | None = None


async def resolve(reads: Reads, ask: Ask, readable: list[str]) -> Lookup:
    """Give back the index lookup of `ask` for a reader who may read `readable` in full; an
    unknown tag matches nothing."""
    tag_id = await search_index.tag_id(reads, ask.tag) if ask.tag else None
    found = lookup(
        ask.words,
        readable,
        tag_id=tag_id,
        author_id=ask.author,
        since=ask.since,
        until=ask.until,
    )
    if ask.tag and tag_id is None:
        return replace(found, low=found.high + 1)
    return found


@dataclass(frozen=True)
class Position:
    """Where a page starts: an offset into the relevance window, or below a sort key."""

    offset: int = 0
    below: int | None = None


def read_cursor(cursor: str | None, *, by_date: bool) -> Position:
    """Give back the position a cursor names; 400 for a cursor of another sort or past the
    relevance window."""
    if not cursor:
        return Position()
    kind, value = decode_cursor(cursor, (str, str))
    if kind != ("d" if by_date else "r") or not str(value).isdigit():
        raise InvalidCursor("The cursor is not valid for this search; start from page one.")
    number = int(str(value))
    if by_date:
        return Position(below=number)
    if number >= WINDOW:
        raise SearchPageOutOfRange(
            f"Ranked results end after {WINDOW}; sort by date to page further.",
            extra={"max_results": WINDOW},
        )
    return Position(offset=number)


@dataclass(frozen=True)
class Found:
    keys: list[int]  # sort keys, best or newest first (search_index.article_id_of)
    total: int
    total_capped: bool
    next_cursor: str | None


async def run(
    reads: Reads, found: Lookup, *, by_date: bool, limit: int, position: Position
) -> list[int]:
    """Give back one page plus one of sort keys (the extra one says another page follows):
    newest first, or by relevance (search_index.ranked) up to the window."""
    if by_date:
        if position.below is not None:
            found = replace(found, high=min(found.high, position.below - 1))
        return await search_index.newest(reads, found, "all", limit + 1)
    need = min(position.offset + limit + 1, WINDOW)
    return (await search_index.ranked(reads, found, need))[position.offset :]


async def search(
    reads: Reads, found: Lookup, *, by_date: bool, limit: int, position: Position
) -> Found:
    """Give back one page of hits, the total and the next page's cursor."""
    if not found.words or found.low > found.high:
        return Found([], 0, False, None)
    keys = await run(reads, found, by_date=by_date, limit=limit, position=position)
    more = len(keys) > limit
    keys = keys[:limit]
    if by_date:
        cursor = encode_cursor("d", str(keys[-1])) if more and keys else None
    else:
        end = position.offset + limit
        cursor = encode_cursor("r", str(end)) if more and end < WINDOW else None
    cap = TOTAL_CAP if by_date else WINDOW
    first_page = position.offset == 0 and position.below is None
    # Everything is on a first page that is not full: no count needed.
    if first_page and not more:
        counted = len(keys)
    else:
        counted = await search_index.count(reads, found, cap + 1)
    return Found(keys, min(counted, cap), counted > cap, cursor)


def highlight(source: str, words: list[str], *, width: int = 160) -> str:
    """Give back a snippet of `source` around the first match, matches wrapped in <mark>.

    `source` must be text the reader may see; the snippet never reaches beyond it. A word
    marks the words it begins, so a prefix or a stem still shows where it matched.
    """
    if not source:
        return ""
    first = _starts(_lowered(source), words, first_only=True)
    start = max(0, (first[0][0] if first else 0) - width // 3)
    window = source[start : start + width]
    if start > 0:
        window = "…" + window.split(" ", 1)[-1]
    if start + width < len(source):
        window = window.rsplit(" ", 1)[0] + "…"
    # Marked once escaped: a word is letters and digits, and _starts never begins one
    # inside an entity, so a mark never splits one.
    escaped = escape(window)
    out, last = [], 0
    for begin, end in _starts(_lowered(escaped), words, escaped=True):
        out += [escaped[last:begin], "<mark>", escaped[begin:end], "</mark>"]
        last = end
    out.append(escaped[last:])
    return "".join(out)


# re's \w (letters, digits, underscore): the words a match must begin, and their rest.
_WORD_CHAR = re.compile(r"\w")
_REST = re.compile(r"\w*")


def _lowered(text: str) -> str:
    # Lower case at the same positions: the few characters whose lower case is longer keep
    # its first character.
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = "".join(c.lower()[0] for c in text)
    return lowered


def _begins_word(text: str, at: int, escaped: bool) -> bool:
    # After a non-word character; in escaped text, not the name of an entity (`&amp;`,
    # `&#x27;`).
    if at == 0:
        return True
    before = text[at - 1]
    if _WORD_CHAR.match(before):
        return False
    return not escaped or (before != "&" and text[at - 2 : at] != "&#")


def _starts(
    lowered: str, words: list[str], *, first_only: bool = False, escaped: bool = False
) -> list[tuple[int, int]]:
    """The (start, end) of each word of `lowered` that one of `words` begins, in order
    (`lowered` is plain text, or HTML-escaped text).

    str.find, not a regex of the words: each new query compiled its own (~40 µs), and
    Python's re tried the alternatives at every position (BENCHMARKS.md).
    """
    found: dict[int, int] = {}
    for word in words:
        at = lowered.find(word)
        while at != -1:
            if _begins_word(lowered, at, escaped):
                rest = _REST.match(lowered, at + len(word))  # \w* always matches
                found[at] = rest.end() if rest else at + len(word)
                if first_only:
                    break
            at = lowered.find(word, at + 1)
    ordered = sorted(found.items())
    return ordered[:1] if first_only else ordered
