"""Article pages and archive cards rendered at write time, joined at read time.

When an article is written (created, edited, published, a tag or author renamed), its card
and its page's members that are the same for every reader are rendered once to JSON bytes,
and its full text once to a JSON string (`article_page`). An archive page is its cards
joined. Answering a reader is then one indexed read and a join of byte strings with the small
part that is theirs: access, paywall box, comment count (presenter.reader_part). Gated text is
only ever in `content`, which is joined in only where the access decision grants it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from app.articles import presenter
from app.articles.repository import pages as repository
from app.articles.schemas import PageSource
from app.core.cache import invalidate_on_commit
from app.core.db import Database
from app.core.jsonutil import dumps

# Raised whenever what page_head renders changes: pages of another format are rendered again
# when a process starts.
PAGE_FORMAT = 1
BATCH = 500


def assemble(head: bytes, content: bytes | None, reader: presenter.Json) -> bytes:
    """The page's JSON: the stored members, the full text or null, the reader's members."""
    text = content if content is not None else b"null"
    return b"{" + head + b',"content_html":' + text + b"," + dumps(reader)[1:]


def _page(source: PageSource, authors: Any, tags: Any, public_url: str) -> dict[str, Any]:
    head = dumps(presenter.page_head(source, authors, tags, public_url))
    return {
        "article_id": source.id,
        "teaser": dumps(presenter.teaser(source, authors, tags)),
        "head": head[1:-1],
        "content": dumps(source.content_html),
        "format": PAGE_FORMAT,
        "public_url": public_url,
    }


def render_batch(
    conn: Connection,
    public_url: str | None,
    *,
    after: int = 0,
    ids: Sequence[int] | None = None,
    stale_only: bool = False,
) -> int | None:
    """Render and store the next BATCH pages after article `after`: of `ids` (or of every
    article), only those rendered with another format or URL if `stale_only`. A `public_url`
    of None keeps each page's own URL. Gives back the last article id seen, None at the end."""
    stale = (PAGE_FORMAT, public_url) if stale_only and public_url is not None else None
    batch = repository.sources(conn, after=after, limit=BATCH, ids=ids, stale=stale)
    if not batch:
        return None
    batch_ids = [source.id for source in batch]
    authors = repository.bylines(conn, batch_ids)
    tags = repository.tag_lists(conn, batch_ids)
    pages = [
        _page(s, authors.get(s.id, []), tags.get(s.id, []), url)
        for s in batch
        if (url := public_url or s.page_url) is not None
    ]
    repository.save(conn, pages)
    return batch_ids[-1]


def render_pages(
    conn: Connection,
    public_url: str | None,
    *,
    ids: Sequence[int] | None = None,
    stale_only: bool = False,
) -> None:
    """Render and store every page `render_batch` would, batch after batch."""
    after: int | None = 0
    while after is not None:
        after = render_batch(conn, public_url, after=after, ids=ids, stale_only=stale_only)


async def refresh_stale(db: Database, public_url: str) -> None:
    """Render every page made with another format or URL (after an upgrade or a change of
    the public URL), a batch per transaction; readers' caches go after each."""
    after: int | None = 0
    while after is not None:
        async with db.session() as session:
            conn = await session.connection()
            after = await conn.run_sync(render_batch, public_url, after=after, stale_only=True)
            invalidate_on_commit(session)
