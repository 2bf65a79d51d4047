"""The free part of a gated article: a strict prefix of its text, cut between top-level blocks.

The invariant is checked over generated Markdown of every block kind, with and without a
paywall marker; the named cases below are the ones the security review found leaking.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.articles.markdown import PreviewRule, Renderer, plain_text

RULE = PreviewRule(blocks=3, max_chars=1500)
WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=9)
WORDS = st.lists(WORD, min_size=1, max_size=12).map(" ".join)


def render(body: str, *, rule: PreviewRule = RULE, blocks: int | None = None) -> tuple[str, str]:
    out = Renderer("https://reader.example", rule).render(
        body, gated=True, preview_blocks=blocks, excerpt_override=None
    )
    return out.preview_html, out.content_html


def _table(rows: list[str]) -> str:
    return "| head |\n|---|\n" + "".join(f"| {row} |\n" for row in rows)


BLOCK = st.one_of(
    WORDS,
    WORDS.map(lambda w: f"## {w}"),
    st.lists(WORDS, min_size=1, max_size=4).map(lambda xs: "\n".join(f"- {x}" for x in xs)),
    st.lists(WORDS, min_size=1, max_size=4).map(lambda xs: "\n".join(f"1. {x}" for x in xs)),
    st.lists(WORDS, min_size=1, max_size=4).map(lambda xs: "```\n" + "\n".join(xs) + "\n```"),
    WORDS.map(lambda w: f"> {w}"),
    st.lists(WORDS, min_size=1, max_size=3).map(_table),
    st.just("---"),
    WORD.map(lambda w: f"![{w}](https://img.example/{w}.png)"),
    WORDS.map(lambda w: f"{w} with a note[^n]"),
    WORDS.map(lambda w: f"{w} and [a link][ref]"),
    st.just("<!-- paywall -->"),
)


@st.composite
def articles(draw: st.DrawFn) -> str:
    blocks = draw(st.lists(BLOCK, min_size=0, max_size=10))
    body = "\n\n".join(blocks)
    if any("[^n]" in b for b in blocks):
        body += "\n\n[^n]: " + draw(WORDS)
    if any("[ref]" in b for b in blocks):
        body += "\n\n[ref]: https://elsewhere.example/"
    return body


@settings(max_examples=300, deadline=None)
@given(
    body=articles(),
    blocks=st.integers(min_value=1, max_value=6),
    max_chars=st.integers(min_value=20, max_value=2000),
)
def test_free_part_is_a_strict_prefix_of_the_text(body: str, blocks: int, max_chars: int) -> None:
    free_html, full_html = render(body, rule=PreviewRule(blocks, max_chars))
    free, full = plain_text(free_html), plain_text(full_html)
    assert full.startswith(free)
    if full:
        assert len(free) < len(full)
    else:
        assert free_html == ""
    # The free HTML is the full HTML's beginning, so no block is ever rendered differently.
    assert full_html.startswith(free_html)
    if "<!-- paywall -->" not in body:
        assert len(free) <= max_chars
        assert 2 * len(free) <= len(full)


@settings(max_examples=100, deadline=None)
@given(body=articles())
def test_teaser_comes_from_the_free_part_only(body: str) -> None:
    out = Renderer("https://reader.example", RULE).render(
        body, gated=True, preview_blocks=None, excerpt_override=None
    )
    assert plain_text(out.preview_html).startswith(out.excerpt.removesuffix("…").rstrip())


def test_short_article_without_marker_gets_an_empty_preview() -> None:
    free, full = render("Free opening.\n\nSecond paragraph.\n\nThird paragraph: CANARY-short.\n")
    assert "CANARY" in full
    # Less than half of the text is ever free: one paragraph of three, not two.
    assert free == "<p>Free opening.</p>\n"
    free, _ = render("Only one paragraph, CANARY-one.")
    assert free == ""


def test_blocks_count_whatever_their_kind_and_the_budget_holds() -> None:
    long_code = "```\n" + "CANARY-code line\n" * 200 + "```"
    body = f"Intro.\n\n{long_code}\n\n- CANARY-list item\n\nTwo.\n\nThree.\n\nCANARY-fourth-para\n"
    free, full = render(body)
    assert free == "<p>Intro.</p>\n"
    assert "CANARY-code" in full
    table = "| x |\n|---|\n| CANARY-table |\n"
    free, _ = render(f"Intro one.\n\n- a list\n\n{table}\n\n" + "More text here. " * 40)
    assert "a list" in free and "CANARY-table" in free
    free, _ = render(f"Intro one.\n\n- a list\n\n{table}\n\n" + "More text here. " * 40, blocks=2)
    assert "CANARY-table" not in free


def test_marker_cuts_where_it_stands_and_nowhere_else() -> None:
    free, full = render("Open.\n<!-- paywall -->\nCANARY-after the marker.\n")
    assert free == "<p>Open.</p>\n" and "CANARY-after" in full
    assert "paywall" not in full
    in_code = "Text.\n\n```\n<!-- paywall -->\n```\n\nMore text, CANARY-later, and more words."
    free, full = render(in_code)
    assert "&lt;!-- paywall --&gt;" in full  # shown as code, not taken as the marker
    assert "CANARY" not in free


def test_marker_with_nothing_after_it_does_not_free_the_whole_body() -> None:
    free, full = render("First part.\n\nSecond part with CANARY-end.\n\n<!-- paywall -->\n")
    assert "CANARY-end" in full
    assert "CANARY-end" not in free


def test_footnotes_render_and_stay_behind_the_paywall() -> None:
    body = "Opening claim.[^1]\n\n<!-- paywall -->\n\nMore.\n\n[^1]: CANARY-footnote source."
    free, full = render(body)
    assert '<sup class="footnote-ref"><a href="#fn1" id="fnref1">[1]</a></sup>' in full
    assert '<li id="fn1" class="footnote-item"><p>CANARY-footnote source.' in full
    assert "CANARY-footnote" not in free
    assert "[^1]" not in full


def test_references_defined_below_the_cut_render_the_same_in_the_free_part() -> None:
    body = "See [the source][src] first.\n\n<!-- paywall -->\n\nGated.\n\n[src]: https://x.example/"
    free, full = render(body)
    link = '<a href="https://x.example/" rel="noopener nofollow">the source</a>'
    assert free == f"<p>See {link} first.</p>\n"
    assert full.startswith(free)
