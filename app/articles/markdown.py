"""Markdown to safe HTML, the paywall cut, and the plain-text excerpt, done once per write.

The free part of a gated article is always a proper prefix of the article cut between
top-level blocks (paragraphs, lists, code, tables, quotes, headings, images), never the whole
body: either the blocks before a `<!-- paywall -->` line, or the automatic preview
(`PreviewRule`). Both are cut from one parse of the whole body and rendered from the same
tokens, so the free HTML is exactly the beginning of the full HTML (references and footnotes
defined further down resolve the same way in both).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import anyio
import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.footnote import footnote_plugin

from app.articles.schemas import Publication
from app.core.config import Settings

# Matched against one stripped line at a time, never across the body: linear in its length.
_MARKER = re.compile(r"<!--\s*paywall\s*-->", re.IGNORECASE)
WORDS_PER_MINUTE = 230
EXCERPT_CHARS = 300

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "figcaption", "figure", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "section", "strong",
    "sub", "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "rel", "id", "class"},
    "img": {"src", "alt", "title"},
    "td": {"align"},
    "th": {"align"},
    "code": {"class"},
    # Footnotes: numbered references, the list at the end and the links back.
    "sup": {"class"},
    "li": {"id", "class"},
    "ol": {"class"},
    "hr": {"class"},
    "section": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}
# Rendering is pure Python and some inputs take markdown-it seconds: it runs on worker
# threads, two at a time, so a long body never stalls the event loop.
_RENDERING = anyio.CapacityLimiter(2)


@dataclass(frozen=True)
class PreviewRule:
    """The automatic preview of a gated article without a paywall marker.

    At most `blocks` top-level blocks and `max_chars` characters of text, at most half of
    the article's text, and never the last block that carries text: short articles get an
    empty preview rather than most of their text.
    """

    blocks: int
    max_chars: int


def preview_rule(settings: Settings) -> PreviewRule:
    """Give back the publication's automatic preview rule."""
    return PreviewRule(settings.preview_paragraphs, settings.preview_max_chars)


@dataclass(frozen=True)
class Rendered:
    content_html: str
    preview_html: str
    excerpt: str
    has_marker: bool
    word_count: int
    reading_minutes: int


@dataclass(frozen=True)
class _Block:
    html: str
    chars: int  # length of its plain text
    marker: bool
    footnotes: bool


class Renderer:
    """Renders article Markdown for one publication (its host decides what links are external)."""

    def __init__(self, public_url: str, rule: PreviewRule, paywall_days: int | None = None) -> None:
        self.public_url = public_url
        self.rule = rule
        # Not a rendering rule, but the other half of what a stored page is rendered with.
        self.publication = Publication(public_url, paywall_days)
        # Raw HTML is off: staff write Markdown, and anything HTML-looking stays text.
        self._md = (
            MarkdownIt("commonmark", {"html": False})
            .enable(["table", "strikethrough"])
            .use(footnote_plugin)
        )
        own_host = urlsplit(public_url).hostname or ""

        # markdown-it binds render rules to its renderer, so `renderer` is that object here.
        def link_open(renderer: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
            token = tokens[idx]
            host = urlsplit(str(token.attrGet("href") or "")).hostname
            if host and host != own_host:
                token.attrSet("rel", "noopener nofollow")
            return str(renderer.renderToken(tokens, idx, options, env))

        self._md.add_render_rule("link_open", link_open)

    def to_html(self, markdown: str) -> str:
        """Give back sanitised HTML for a Markdown source (no paywall cut)."""
        return sanitise(self._md.render(markdown))

    async def to_html_off_loop(self, markdown: str) -> str:
        """`to_html` on a worker thread."""
        return await anyio.to_thread.run_sync(self.to_html, markdown, limiter=_RENDERING)

    def render(
        self,
        body_md: str,
        *,
        gated: bool,
        preview_blocks: int | None,
        excerpt_override: str | None,
    ) -> Rendered:
        """Render the full text, the free part and the teaser of an article.

        The teaser comes from the free part; only a public article whose free part is empty
        (a short one) takes it from its text.
        """
        blocks = self._blocks(body_md)
        body = [b for b in blocks if not b.marker]
        content_html = sanitise("".join(b.html for b in body))
        full_text = plain_text(content_html)
        free = self._free_blocks(blocks, preview_blocks or self.rule.blocks)
        preview_html = _strict_prefix(free, full_text)
        words = len(full_text.split())
        return Rendered(
            content_html=content_html,
            preview_html=preview_html,
            excerpt=teaser_text(preview_html, full_text, excerpt_override, gated=gated),
            has_marker=any(b.marker for b in blocks),
            word_count=words,
            reading_minutes=max(1, math.ceil(words / WORDS_PER_MINUTE)) if words else 0,
        )

    async def render_off_loop(
        self,
        body_md: str,
        *,
        gated: bool,
        preview_blocks: int | None,
        excerpt_override: str | None,
    ) -> Rendered:
        """`render` on a worker thread."""
        job = functools.partial(
            self.render,
            body_md,
            gated=gated,
            preview_blocks=preview_blocks,
            excerpt_override=excerpt_override,
        )
        return await anyio.to_thread.run_sync(job, limiter=_RENDERING)

    def _free_blocks(self, blocks: Sequence[_Block], limit: int) -> list[_Block]:
        cut = next((i for i, b in enumerate(blocks) if b.marker), None)
        if cut is not None and sum(b.chars for b in blocks[cut + 1 :] if not b.marker) > 0:
            return list(blocks[:cut])
        # No marker, or nothing with text after it: the automatic rule decides.
        body = [b for b in blocks if not b.marker and not b.footnotes]
        return _automatic(body, limit, self.rule.max_chars)

    def _blocks(self, markdown: str) -> list[_Block]:
        env: dict[str, Any] = {}
        tokens = self._md.parse(_isolate_markers(self._md, markdown), env)
        out = []
        for start, end in _top_level(tokens):
            first = tokens[start]
            html = self._md.renderer.render(tokens[start:end], self._md.options, env)
            out.append(
                _Block(
                    html=html,
                    chars=len(plain_text(sanitise(html))),
                    marker=_is_marker(tokens[start:end]),
                    footnotes=first.type == "footnote_block_open",
                )
            )
        return out


def teaser_text(
    preview_html: str, full_text: str, excerpt_override: str | None, *, gated: bool
) -> str:
    """An article's plain-text teaser: the staff's own, else its free part; only an article
    no rule can gate whose free part is empty (a short one) takes it from its `full_text`."""
    source = plain_text(preview_html) or ("" if gated else full_text)
    return shorten(excerpt_override or source, EXCERPT_CHARS)


def _automatic(body: Sequence[_Block], limit: int, max_chars: int) -> list[_Block]:
    total = len(_text(body))
    taken: list[_Block] = []
    for block in body[: min(limit, len(body) - 1)]:
        # Measured on the joined text, as readers get it (blocks are separated by a space).
        chars = len(_text([*taken, block]))
        if chars > max_chars or 2 * chars >= total:
            break
        taken.append(block)
    return taken


def _text(blocks: Sequence[_Block]) -> str:
    return plain_text(sanitise("".join(b.html for b in blocks)))


def _strict_prefix(free: Sequence[_Block], full_text: str) -> str:
    """The free blocks' HTML, or "" unless its text is a strict prefix of the full text."""
    html = sanitise("".join(b.html for b in free)) if free else ""
    text = plain_text(html)
    if full_text.startswith(text) and len(text) < len(full_text):
        return html
    return ""


def _top_level(tokens: Sequence[Token]) -> list[tuple[int, int]]:
    """Give back the [start, end) token ranges of the top-level blocks."""
    spans = []
    depth = 0
    start = 0
    for index, token in enumerate(tokens):
        if depth == 0:
            start = index
        depth += token.nesting
        if depth == 0:
            spans.append((start, index + 1))
    return spans


def _is_marker(tokens: Sequence[Token]) -> bool:
    return (
        len(tokens) == 3
        and tokens[0].type == "paragraph_open"
        and _MARKER.fullmatch(tokens[1].content.strip()) is not None
    )


def _isolate_markers(md: MarkdownIt, markdown: str) -> str:
    """Give back the source with every marker line outside code set apart by blank lines,
    so that it is a paragraph of its own even when written against a paragraph's text."""
    lines = markdown.splitlines(keepends=True)
    marked = [i for i, line in enumerate(lines) if _MARKER.fullmatch(line.strip())]
    if not marked:
        return markdown
    in_code: set[int] = set()
    for token in md.parse(markdown):
        if token.type in ("fence", "code_block") and token.map:
            in_code.update(range(*token.map))
    for i in marked:
        if i not in in_code:
            lines[i] = "\n" + lines[i].strip() + "\n\n"
    return "".join(lines)


def sanitise(html: str) -> str:
    """Give back `html` with only the tags, attributes and URL schemes articles may use."""
    return nh3.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=URL_SCHEMES,
        link_rel=None,
        strip_comments=True,
    )


def plain_text(html: str) -> str:
    """Give back the text of an HTML fragment, whitespace collapsed."""
    text = nh3.clean(html.replace("</p>", "</p> ").replace("<br>", " "), tags=set())
    text = (
        text.replace("&amp;", "&")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", '"')
        .replace("&#39;", "'")
    )
    return " ".join(text.split())


def shorten(text: str, limit: int) -> str:
    """Give back `text` cut at a word boundary to at most `limit` characters."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:.-")
    return cut + "…"
