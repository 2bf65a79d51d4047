"""OWASP filter-evasion vectors in titles and bodies come out inert."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from httpx import AsyncClient

from app.accounts.models import Role
from app.articles.markdown import ALLOWED_TAGS
from tests.factories import ArticleFactory, Factory

VECTORS = [
    "<script>alert('XSS')</script>",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    '<IMG """><SCRIPT>alert("XSS")</SCRIPT>">',
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<img src=x onerror=alert(1)//",
    '<svg/onload=alert("XSS")>',
    "<BODY ONLOAD=alert('XSS')>",
    "<iframe src=\"javascript:alert('XSS');\"></iframe>",
    "<a href=\"jav&#x09;ascript:alert('XSS');\">x</a>",
    "[click](javascript:alert(1))",
    "[click](JAVASCRIPT:alert(1))",
    "[click](vbscript:msgbox(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "![img](javascript:alert(1))",
    '<div style="background-image: url(javascript:alert(1))">x</div>',
    '<<SCRIPT>alert("XSS");//<</SCRIPT>',
    '<META HTTP-EQUIV="refresh" CONTENT="0;url=javascript:alert(\'XSS\');">',
    '<object data="javascript:alert(1)"></object>',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]
SAFE_TAGS = ALLOWED_TAGS
SAFE_SCHEMES = ("http:", "https:", "mailto:", "#", "/")


class ElementCollector(HTMLParser):
    """Collects the elements and attributes a browser would build from an HTML fragment."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))


def assert_inert(html: str) -> None:
    collector = ElementCollector()
    collector.feed(html)
    for tag, attrs in collector.elements:
        assert tag in SAFE_TAGS, tag
        for name, value in attrs:
            assert not name.startswith("on"), name
            if name in ("href", "src"):
                assert (value or "").strip().lower().startswith(SAFE_SCHEMES), value


@pytest.mark.parametrize("vector", VECTORS)
async def test_vectors_in_body_and_title_are_inert(
    client: AsyncClient, factory: Factory, articles: ArticleFactory, vector: str
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(
        editor, title=f"Title {vector}", body=f"Before.\n\n{vector}\n\nAfter {vector}."
    )
    data = (await client.get(f"/api/v1/articles/{article.slug}")).json()
    for field in ("content_html", "excerpt_html"):
        assert_inert(data[field])
    feed = await client.get("/feed.xml")
    assert "<script" not in feed.text.lower()
    # Plain-text fields carry the characters as text; they are JSON strings, not markup.
    assert data["title"] == f"Title {' '.join(vector.split())}"


async def test_external_links_get_rel_and_internal_do_not(
    client: AsyncClient, factory: Factory, articles: ArticleFactory
) -> None:
    editor = await factory.member(role=Role.editor)
    article = await articles.make(
        editor, body="[out](https://elsewhere.example/a) and [home](https://reader.example/b)"
    )
    html = (await client.get(f"/api/v1/articles/{article.slug}")).json()["content_html"]
    assert '<a href="https://elsewhere.example/a" rel="noopener nofollow">' in html
    assert '<a href="https://reader.example/b">' in html
