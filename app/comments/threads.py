"""Reading comments: a thread page with its replies, counts, authors' names, the reader's view."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.articles import repository as articles
from app.articles.errors import ArticleNotFound
from app.articles.models import Article
from app.comments import repository as repo
from app.comments.models import Comment, CommentStatus
from app.comments.schemas import CommentOut
from app.core.db import pk
from app.core.pagination import Page, clamp, encode_cursor

DELETED_TEXT = "[deleted]"
# Shown for an author with no display name (magic-link readers start without one); it says
# nothing about who they are, and never falls back to the email address.
NAMELESS = "Reader"


def author_name(display_name: str) -> str:
    """Give back the name a comment author is shown under."""
    return display_name.strip() or NAMELESS


@dataclass(frozen=True)
class ThreadPage:
    comments: list[Comment]
    replies: dict[int, list[Comment]]
    next_cursor: str | None


ORDERS = ("newest", "oldest", "top")


def _next_cursor(order: str, more: bool, rows: list[Comment]) -> str | None:
    if not (more and rows):
        return None
    last = rows[-1]
    return encode_cursor(last.like_count, last.id) if order == "top" else encode_cursor(last.id)


async def thread(
    session: AsyncSession,
    article_id: int,
    *,
    order: str,
    parent_id: int | None,
    limit: int,
    cursor: str | None,
    nested: bool,
    include_hidden: bool = False,
) -> ThreadPage:
    """One page of comments under `parent_id` (top level when None), with their replies."""
    rows = await repo.thread_rows(
        session,
        article_id,
        parent_id=parent_id,
        order=order,
        cursor=cursor,
        limit=limit + 1,
        include_hidden=include_hidden,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    replies: dict[int, list[Comment]] = {}
    if nested and rows:
        replies = await _descendants(session, article_id, [pk(c.id) for c in rows], include_hidden)
    rows = [c for c in rows if _shown(c, replies)]
    return ThreadPage(rows, replies, _next_cursor(order, more, rows))


def _shown(comment: Comment, replies: dict[int, list[Comment]]) -> bool:
    # A deleted comment stays as a "[deleted]" placeholder only while it holds replies.
    return comment.status != CommentStatus.deleted.value or bool(replies.get(pk(comment.id)))


async def _descendants(
    session: AsyncSession, article_id: int, roots: Sequence[int], include_hidden: bool
) -> dict[int, list[Comment]]:
    children: dict[int, list[Comment]] = {}
    frontier = list(roots)
    while frontier:
        rows = await repo.children_of(session, article_id, frontier, include_hidden)
        for row in rows:
            children.setdefault(pk(row.parent_id), []).append(row)
        frontier = [pk(r.id) for r in rows]

    # Drop deleted leaves bottom-up, so a placeholder remains only above living replies.
    def prune(node_id: int) -> bool:
        kept = [
            c
            for c in children.get(node_id, [])
            if prune(pk(c.id)) or c.status != CommentStatus.deleted.value
        ]
        children[node_id] = kept
        return bool(kept)

    for root in roots:
        prune(root)
    return children


async def counts(session: AsyncSession, article_ids: Sequence[int]) -> dict[int, int]:
    """Give back the number of visible comments per article."""
    if not article_ids:
        return {}
    return await repo.visible_counts(session, article_ids)


async def authors(session: AsyncSession, ids: set[int]) -> dict[int, str]:
    """Give back the shown name of each author id."""
    if not ids:
        return {}
    names = await accounts.display_names(session, ids)
    return {i: author_name(name) for i, name in names.items()}


async def live_article(session: AsyncSession, slug: str) -> Article:
    """Give back the live article at this slug (an old slug is not followed here)."""
    found = await articles.by_slug(session, slug)
    if not isinstance(found, Article):
        raise ArticleNotFound("No such article.")
    return found


def comment_out(
    comment: Comment, names: dict[int, str], replies: dict[int, list[Comment]]
) -> CommentOut:
    """Give back the reader's view of a comment and its replies (a deleted one shows no text)."""
    deleted = comment.status == CommentStatus.deleted.value
    author: dict[str, object] | None = None
    if not deleted:
        author = (
            {"id": comment.author_id, "name": names.get(comment.author_id, NAMELESS)}
            if comment.author_id is not None
            else {"id": None, "name": "[deleted account]"}
        )
    return CommentOut(
        id=pk(comment.id),
        parent_id=comment.parent_id,
        author=author,
        body_html="" if deleted else comment.body_html,
        deleted=deleted,
        status=comment.status,
        likes=comment.like_count,
        created_at=comment.created_at,
        edited_at=comment.edited_at,
        replies=[comment_out(r, names, replies) for r in replies.get(pk(comment.id), [])],
    )


def _authors_in(rows: list[Comment], replies: dict[int, list[Comment]]) -> set[int]:
    ids = {c.author_id for c in rows if c.author_id is not None}
    for children in replies.values():
        ids |= {c.author_id for c in children if c.author_id is not None}
    return ids


async def article_thread(
    session: AsyncSession,
    slug: str,
    *,
    order: str,
    parent_id: int | None,
    limit: int,
    cursor: str | None,
    nested: bool,
) -> Page[CommentOut]:
    """One page of a live article's thread as readers see it, with authors' names."""
    article = await live_article(session, slug)
    page = await thread(
        session,
        pk(article.id),
        order=order,
        parent_id=parent_id,
        limit=clamp(limit),
        cursor=cursor,
        nested=nested,
    )
    names = await authors(session, _authors_in(page.comments, page.replies))
    return Page[CommentOut](
        items=[comment_out(c, names, page.replies) for c in page.comments],
        next_cursor=page.next_cursor,
    )
