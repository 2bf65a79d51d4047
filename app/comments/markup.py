"""Comment bodies: plain text with a small Markdown subset (emphasis, code, links), sanitised."""

from __future__ import annotations

import anyio
import nh3
from markdown_it import MarkdownIt

_MD = MarkdownIt("zero", {"breaks": True}).enable(["emphasis", "backticks", "link", "newline"])
TAGS = {"p", "br", "em", "strong", "code", "a"}


def to_html(body: str) -> str:
    """Give back safe HTML for a comment: links become `rel="nofollow ugc noopener"`."""
    return nh3.clean(
        _MD.render(body),
        tags=TAGS,
        attributes={"a": {"href"}},
        url_schemes={"http", "https", "mailto"},
        link_rel="nofollow ugc noopener",
    )


async def to_html_off_loop(body: str) -> str:
    """`to_html` on a worker thread: some 10,000-character bodies take markdown-it 0.1 s."""
    return await anyio.to_thread.run_sync(to_html, body)
