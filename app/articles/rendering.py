"""Markdown to safe HTML, the paywall cut, and the plain-text excerpt, done once per write."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import nh3
from markdown_it import MarkdownIt
from markdown_it.token import Token

PAYWALL_MARKER = re.compile(r"^\s*<!--\s*paywall\s*-->\s*$", re.IGNORECASE | re.MULTILINE)
_PARAGRAPH = re.compile(r"<p>.*?</p>", re.DOTALL)
WORDS_PER_MINUTE = 230
EXCERPT_CHARS = 300

ALLOWED_TAGS = {
    "a", "abbr", "b", "blockquote", "br", "code", "del", "em", "figcaption", "figure", "h2",
    "h3", "h4", "h5", "h6", "hr", "i", "img", "li", "ol", "p", "pre", "s", "strong", "sub",
    "sup", "table", "tbody", "td", "th", "thead", "tr", "ul",
}  # fmt: skip
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "rel"},
    "img": {"src", "alt", "title"},
    "td": {"align"},
    "th": {"align"},
    "code": {"class"},
}
URL_SCHEMES = {"http", "https", "mailto"}


@dataclass(frozen=True)
class Rendered:
    content_html: str
    preview_html: str
    excerpt: str
    has_marker: bool
    word_count: int
    reading_minutes: int


class Renderer:
    """Renders article Markdown for one publication (its host decides what links are external)."""

    def __init__(self, public_url: str, default_preview_paragraphs: int) -> None:
        self._own_host = urlsplit(public_url).hostname or ""
        self.default_preview_paragraphs = default_preview_paragraphs
        # Raw HTML is off: staff write Markdown, and anything HTML-looking stays text.
        self._md = MarkdownIt("commonmark", {"html": False}).enable(["table", "strikethrough"])
        own_host = self._own_host

        # markdown-it binds render rules to its renderer, so `renderer` is that object here.
        def link_open(renderer: Any, tokens: list[Token], idx: int, options: Any, env: Any) -> str:
            token = tokens[idx]
            host = urlsplit(str(token.attrGet("href") or "")).hostname
            if host and host != own_host:
                token.attrSet("rel", "noopener nofollow")
            return str(renderer.renderToken(tokens, idx, options, env))

        self._md.add_render_rule("link_open", link_open)

    def to_html(self, markdown: str) -> str:
        """Give back sanitised HTML for a Markdown source."""
        html = self._md.render(markdown)
        return nh3.clean(
            html,
            tags=ALLOWED_TAGS,
            attributes=ALLOWED_ATTRIBUTES,
            url_schemes=URL_SCHEMES,
            link_rel=None,
            strip_comments=True,
        )

    def render(
        self, body_md: str, *, preview_paragraphs: int | None, excerpt_override: str | None
    ) -> Rendered:
        """Render the full text, the free preview and the teaser of an article."""
        parts = PAYWALL_MARKER.split(body_md, maxsplit=1)
        has_marker = len(parts) == 2
        full_md = "".join(parts)
        if has_marker:
            free_md = parts[0]
        else:
            free_md = self.first_paragraphs(
                full_md, preview_paragraphs or self.default_preview_paragraphs
            )
        content_html = self.to_html(full_md)
        preview_html = self.to_html(free_md)
        words = len(plain_text(content_html).split())
        excerpt_source = excerpt_override or plain_text(
            " ".join(_PARAGRAPH.findall(preview_html)) or preview_html
        )
        return Rendered(
            content_html=content_html,
            preview_html=preview_html,
            excerpt=shorten(excerpt_source, EXCERPT_CHARS),
            has_marker=has_marker,
            word_count=words,
            reading_minutes=max(1, math.ceil(words / WORDS_PER_MINUTE)) if words else 0,
        )

    def first_paragraphs(self, markdown: str, count: int) -> str:
        """Give back the Markdown up to the end of its `count`-th top-level paragraph."""
        lines = markdown.splitlines(keepends=True)
        seen = 0
        for token in self._md.parse(markdown):
            if token.type == "paragraph_open" and token.level == 0 and token.map:
                seen += 1
                if seen == count:
                    return "".join(lines[: token.map[1]])
        return markdown


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
