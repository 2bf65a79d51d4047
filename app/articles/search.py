"""Full-text search behind one interface: SQLite FTS5 or PostgreSQL tsvector + GIN.

Each article is indexed twice: its public text (title, subtitle, excerpt, tags) and its full
text. Readers match the full text only of articles they may read; for every other article
only the public text can match, so a search can never reveal words behind the paywall. This is
the engine (terms, ranking merge, snippets); the statements it runs are in search_index.py.
"""

from __future__ import annotations

import re
from html import escape

from sqlmodel.ext.asyncio.session import AsyncSession

from app.articles import search_index
from app.articles.search_index import ALL_VISIBILITIES

_WORD = re.compile(r"\w+", re.UNICODE)
MAX_TERMS = 12


def public_text(title: str, subtitle: str, excerpt: str, tags: list[str]) -> str:
    """Give back what anyone may match an article by: title, subtitle, teaser and tags."""
    return " ".join([title, subtitle, excerpt, *tags])


def terms(query: str) -> list[str]:
    """Give back the words of a user query; all search syntax is dropped, never interpreted."""
    return [word.lower() for word in _WORD.findall(query)][:MAX_TERMS]


async def search_ids(
    session: AsyncSession, words: list[str], readable: list[str], *, limit: int, offset: int = 0
) -> list[tuple[int, str | None]]:
    """Give back matching article ids, best first; full text only where `readable` allows.

    Relevance is computed among the newest matches only (a window of at least WINDOW), so a
    word found in every article costs the same as a rare one: ranking all of 100,000
    matches took over a second, the window takes milliseconds. Snippets are cut for the
    page only (cutting them for the whole window took 150 ms on 20,000 articles).
    """
    if not words:
        return []
    window = max(WINDOW, offset + limit)
    sqlite = search_index.is_sqlite(session)
    rank = search_index.rank_sqlite if sqlite else search_index.rank_postgres
    full = await rank(session, words, readable, window, public_only=False)
    # Public text is part of the full text, so a reader of everything needs no second query.
    everything = set(readable) == ALL_VISIBILITIES
    public = [] if everything else await rank(session, words, readable, window, public_only=True)
    best: dict[int, float] = {}
    for article_id, score in [*full, *public]:
        best[article_id] = max(score, best.get(article_id, score))
    ranked = sorted(best.items(), key=lambda item: (-item[1], -item[0]))
    page = [article_id for article_id, _ in ranked[offset : offset + limit]]
    if not sqlite:
        # The tsvectors hold no text: the router cuts snippets from public fields.
        return [(article_id, None) for article_id in page]
    # An article matched in its full text is one the reader may read; any other hit matched
    # its public text only, and its snippet is cut from that column alone.
    in_full = {article_id for article_id, _ in full}
    snippets = await search_index.sqlite_snippets(
        session, words, [i for i in page if i in in_full], True
    )
    snippets |= await search_index.sqlite_snippets(
        session, words, [i for i in page if i not in in_full], False
    )
    return [(article_id, snippets.get(article_id)) for article_id in page]


WINDOW = 2000


def highlight(source: str, words: list[str], *, width: int = 160) -> str:
    """Give back a snippet of `source` around the first match, matches wrapped in <mark>.

    `source` must be text the reader may see; the snippet never reaches beyond it.
    """
    if not source:
        return ""
    pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None
    match = pattern.search(source) if pattern else None
    start = max(0, (match.start() if match else 0) - width // 3)
    window = source[start : start + width]
    if start > 0:
        window = "…" + window.split(" ", 1)[-1]
    if start + width < len(source):
        window = window.rsplit(" ", 1)[0] + "…"
    out = escape(window)
    if pattern:
        out = re.sub(
            "|".join(re.escape(escape(w)) for w in words),
            lambda m: f"<mark>{m.group(0)}</mark>",
            out,
            flags=re.IGNORECASE,
        )
    return out
