"""Article pages and archive cards rendered at write time, joined at read time.

When an article is written (created, edited, published, a tag or author renamed), its card
and its page's members that are the same for every reader are rendered once to JSON bytes,
and its full text once to a JSON string (`article_page`). An archive page is its cards
joined. Answering a reader is then one indexed read and a join of byte strings with the small
part that is theirs: access, paywall box, comment count (presenter.reader_part), and the
JSON-LD members that follow the time rules. Gated text is only ever in `content`, which is
joined in only where the access decision grants it. The article's requirement is stored
with the page (`rules`), so the same read gives what the decision needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from app.access.rules import Rules, Visibility, gated_at
from app.articles import presenter
from app.articles.markdown import plain_text, teaser_text
from app.articles.repository import pages as repository
from app.articles.schemas import PageSource, Publication
from app.core.config import Settings
from app.core.jsonutil import dumps

# Raised whenever what page_head renders changes: pages of another format are rendered again
# when a process starts.
PAGE_FORMAT = 2
BATCH = 500


def publication(settings: Settings) -> Publication:
    """The publication pages are rendered with now."""
    return Publication(settings.public_url, settings.auto_paywall_days)


def assemble(
    head: bytes, structured: bytes, free: bool, content: bytes | None, reader: presenter.Json
) -> bytes:
    """The page's JSON: the stored members, its JSON-LD as the moment has it, the full text
    or null, the reader's members."""
    text = content if content is not None else b"null"
    return (
        b"{" + head + b',"structured_data":' + presenter.structured_data(structured, free)
        + b',"content_html":' + text + b"," + dumps(reader)[1:]
    )  # fmt: skip


def encode_rules(rules: Rules, tier_slugs: Sequence[str]) -> bytes:
    """The stored form of an article's requirement (with its tiers' slugs, for answers)."""
    return dumps(
        {"v": rules.visibility, "t": sorted(rules.tiers), "s": list(tier_slugs),
         "fa": rules.free_after, "fu": rules.free_until, "ga": rules.gated_at}
    )  # fmt: skip


def decode_rules(stored: bytes) -> tuple[Rules, list[str]]:
    """The requirement and tier slugs `encode_rules` stored; an unreadable one fails closed."""
    try:
        data = orjson.loads(stored)
        rules = Rules(
            visibility=data["v"],
            tiers=frozenset(data["t"]),
            free_after=_moment(data["fa"]),
            free_until=_moment(data["fu"]),
            gated_at=_moment(data["ga"]),
        )
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return Rules(Visibility.tiers.value), []
    return rules, list(data["s"])


def _moment(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def rules_of(source: PageSource, tier_ids: Sequence[int], paywall_days: int | None) -> Rules:
    """An article's requirement, its automatic paywall worked out from its publication time."""
    return Rules(
        visibility=source.visibility,
        tiers=frozenset(tier_ids),
        free_after=source.free_after,
        free_until=source.free_until,
        gated_at=gated_at(
            source.visibility, source.published_at, source.gated_after_days,
            source.auto_paywall, paywall_days,
        ),
    )  # fmt: skip


def ever_gated(
    visibility: str, own_days: int | None, auto_paywall: bool, paywall_days: int | None
) -> bool:
    """Whether some rule gates the article at some moment (its teaser then comes from its
    free part only): any visibility but public, or an automatic paywall."""
    return (
        visibility != Visibility.public.value
        or own_days is not None
        or (auto_paywall and paywall_days is not None)
    )


def _page(
    source: PageSource, authors: Any, tags: Any, tiers: list[tuple[int, str]], pub: Publication
) -> dict[str, Any]:
    slugs = [slug for _, slug in tiers]
    rules = rules_of(source, [tier_id for tier_id, _ in tiers], pub.paywall_days)
    before = (source.excerpt, source.gated_at)
    # The automatic paywall's time and the teaser, worked out here as the publication has
    # them now, go on the card and page and back to the article (feeds, search read them).
    source.gated_at = rules.gated_at
    gated = ever_gated(source.visibility, source.gated_after_days, source.auto_paywall,
                       pub.paywall_days)  # fmt: skip
    full_text = "" if gated or source.preview_html else plain_text(source.content_html)
    source.excerpt = teaser_text(source.preview_html, full_text, source.excerpt_override,
                                 gated=gated)  # fmt: skip
    head, structured = presenter.page_head(source, authors, tags, slugs, pub.public_url)
    return {
        "article_id": source.id,
        "teaser": dumps(presenter.teaser(source, authors, tags, slugs)),
        "head": dumps(head)[1:-1],
        "content": dumps(source.content_html),
        "format": PAGE_FORMAT,
        "public_url": pub.public_url,
        "structured": structured,
        "rules": encode_rules(rules, slugs),
        "paywall_days": pub.paywall_days,
        "gated_at": rules.gated_at,
        "excerpt": source.excerpt,
        "searched_changed": before != (source.excerpt, source.gated_at),
    }


@dataclass(frozen=True)
class Batch:
    """What one `render_batch` did: the last article id it saw, and the ids of the articles
    whose teaser or automatic-paywall time changed (their search entries are stale)."""

    last: int
    changed: list[int]


def render_batch(
    conn: Connection,
    publication: Publication | None,
    *,
    after: int = 0,
    ids: Sequence[int] | None = None,
    stale_only: bool = False,
) -> Batch | None:
    """Render and store the next BATCH pages after article `after`: of `ids` (or of every
    article), only those rendered with another format or publication if `stale_only`. A
    `publication` of None keeps each page's own. None at the end."""
    stale = (PAGE_FORMAT, publication) if stale_only and publication is not None else None
    batch = repository.sources(conn, after=after, limit=BATCH, ids=ids, stale=stale)
    if not batch:
        return None
    batch_ids = [source.id for source in batch]
    authors = repository.bylines(conn, batch_ids)
    tags = repository.tag_lists(conn, batch_ids)
    tiers = repository.tier_lists(conn, batch_ids)
    pages = [
        _page(s, authors.get(s.id, []), tags.get(s.id, []), tiers.get(s.id, []), pub)
        for s in batch
        if (pub := publication or s.publication) is not None
    ]
    repository.save(conn, pages)
    return Batch(batch_ids[-1], [p["article_id"] for p in pages if p["searched_changed"]])


def render_pages(
    conn: Connection,
    publication: Publication | None,
    *,
    ids: Sequence[int] | None = None,
    stale_only: bool = False,
) -> list[int]:
    """Render and store every page `render_batch` would, batch after batch; give back the
    ids of the articles whose search entries went stale (`Batch.changed`)."""
    changed: list[int] = []
    after = 0
    while (batch := render_batch(
        conn, publication, after=after, ids=ids, stale_only=stale_only
    )) is not None:  # fmt: skip
        changed += batch.changed
        after = batch.last
    return changed
