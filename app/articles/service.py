"""Staff rules for articles: create, edit with revisions, publish, schedule, delete, restore."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slugify import slugify
from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import repository as accounts
from app.accounts.models import STAFF_ROLES, Role, User
from app.articles import derived, page_parts, repository, requirement
from app.articles.errors import (
    ArticleForbidden,
    ArticleNotFound,
    InvalidAuthors,
    InvalidSchedule,
    SlugTaken,
    VersionConflict,
    VersionRequired,
)
from app.articles.markdown import Renderer
from app.articles.models import (
    Article,
    ArticleAuthor,
    ArticleRevision,
    ArticleTag,
    SlugRedirect,
    Status,
    Tag,
)
from app.articles.schemas import ArticleCreate, ArticleUpdate
from app.core.cache import invalidate_on_commit
from app.core.db import as_utc, pk, utcnow

EDITOR_ROLES = frozenset({Role.editor.value, Role.admin.value})


def can_publish(user: User) -> bool:
    return user.role in EDITOR_ROLES


async def load_for_staff(session: AsyncSession, user: User, article_id: int) -> Article:
    """Give back an article a staff member may see (authors: their own); 404 otherwise."""
    article = await repository.article(session, article_id)
    if article is None:
        raise ArticleNotFound("No such article.")
    if user.role not in EDITOR_ROLES and user.id not in await repository.author_ids(
        session, article_id
    ):
        raise ArticleNotFound("No such article.")
    return article


async def check_can_edit(session: AsyncSession, user: User, article: Article) -> None:
    """Editors and admins edit everything; authors only their own drafts."""
    if user.role in EDITOR_ROLES:
        return
    if (
        user.id in await repository.author_ids(session, pk(article.id))
        and article.status == Status.draft.value
    ):
        return
    raise ArticleForbidden("Authors may edit only their own drafts.")


def check_version(article: Article, expected: int | None) -> None:
    if expected is None:
        raise VersionRequired("Send the version you edited (If-Match header or `version`).")
    if expected != article.version:
        raise VersionConflict(
            f"The article is at version {article.version}; reload and apply your change again.",
            extra={"current_version": article.version},
        )


async def _unique_slug(session: AsyncSession, wanted: str, article_id: int | None) -> str:
    base = slugify(wanted, max_length=180, word_boundary=True) or "article"
    candidate, n = base, 1
    while True:
        existing = await repository.id_of_slug(session, candidate)
        redirect = await repository.redirect(session, candidate)
        if (existing is None or existing == article_id) and (
            redirect is None or redirect.article_id == article_id
        ):
            return candidate
        n += 1
        candidate = f"{base}-{n}"


async def _set_tags(session: AsyncSession, article_id: int, names: Sequence[str]) -> None:
    wanted: list[int] = []
    for name in names:
        slug = slugify(name, max_length=100)
        if not slug:
            continue
        tag = await repository.tag_by_slug(session, slug)
        if tag is None:
            tag = Tag(slug=slug, name=" ".join(name.split()))
            session.add(tag)
            await session.flush()
        wanted.append(pk(tag.id))
    # Only the links that change are written, one row each, so the audit log records each
    # tag added or removed (a bulk DELETE and re-insert would hide which).
    current = await repository.tag_links(session, article_id)
    for link in current:
        if link.tag_id not in wanted:
            await session.delete(link)
    kept = {link.tag_id for link in current}
    for tag_id in dict.fromkeys(wanted):
        if tag_id not in kept:
            session.add(ArticleTag(article_id=article_id, tag_id=tag_id))
    # Sessions do not autoflush: what reads the links next (the search index, the answer)
    # must see them.
    await session.flush()


async def _set_authors(session: AsyncSession, article_id: int, ids: Sequence[int]) -> None:
    unique = list(dict.fromkeys(ids))
    users = await accounts.users_by_ids(session, unique)
    staff = {u.id for u in users if u.role in STAFF_ROLES and u.deleted_at is None}
    if not unique or set(unique) != staff:
        raise InvalidAuthors("Every author must be an existing staff account.")
    # Row by row, like the tags: each credit given, withdrawn or moved is its own audit entry.
    current = {link.user_id: link for link in await repository.author_links(session, article_id)}
    for user_id, link in current.items():
        if user_id not in unique:
            await session.delete(link)
    for position, user_id in enumerate(unique):
        existing = current.get(user_id)
        if existing is None:
            session.add(ArticleAuthor(article_id=article_id, user_id=user_id, position=position))
        elif existing.position != position:
            existing.position = position
            session.add(existing)
    await session.flush()


async def _render(renderer: Renderer, article: Article) -> None:
    # The same rule as the stored page's (page_parts), which writes the teaser again when the
    # publication's automatic paywall changes.
    gated = page_parts.ever_gated(
        article.visibility, article.gated_after_days, article.auto_paywall,
        renderer.publication.paywall_days,
    )  # fmt: skip
    out = await renderer.render_off_loop(
        article.body_md,
        gated=gated,
        preview_blocks=article.preview_paragraphs,
        excerpt_override=article.excerpt_override,
    )
    article.content_html = out.content_html
    article.preview_html = out.preview_html
    article.excerpt = out.excerpt
    article.has_paywall_marker = out.has_marker
    article.word_count = out.word_count
    article.reading_minutes = out.reading_minutes


async def _after_write(
    session: AsyncSession, renderer: Renderer, editor: User, article: Article
) -> None:
    """Record the revision and refresh the stored page and the search index for the article
    as it now stands; readers' cached answers go once this commits."""
    invalidate_on_commit(session)
    article_id = pk(article.id)
    session.add(
        ArticleRevision(
            article_id=article_id,
            version=article.version,
            editor_id=editor.id,
            title=article.title,
            subtitle=article.subtitle,
            body_md=article.body_md,
            excerpt_override=article.excerpt_override,
        )
    )
    await derived.article(session, article_id, renderer.publication)


async def create_article(
    session: AsyncSession, renderer: Renderer, editor: User, data: ArticleCreate
) -> Article:
    """Create a draft; its author is the editor unless `author_ids` says otherwise."""
    if data.author_ids and editor.role not in EDITOR_ROLES and data.author_ids != [editor.id]:
        raise ArticleForbidden("Authors may only credit themselves.")
    if data.slug:
        taken = await repository.id_of_slug(session, data.slug)
        if taken is not None or await repository.redirect(session, data.slug) is not None:
            raise SlugTaken("That slug is used by another article.")
    article = Article(
        slug=data.slug or await _unique_slug(session, data.title, None),
        title=data.title,
        subtitle=data.subtitle,
        body_md=data.body_md,
        excerpt_override=data.excerpt,
        preview_paragraphs=data.preview_paragraphs,
        visibility=data.visibility.value,
        cover_image_url=str(data.cover_image_url) if data.cover_image_url else None,
        cover_image_alt=data.cover_image_alt,
        seo_title=data.seo_title,
        seo_description=data.seo_description,
        comments=data.comments.value,
        created_by_id=editor.id,
    )
    requirement.set_times(article, data.model_dump(include=set(requirement.TIME_FIELDS)))
    await _render(renderer, article)
    session.add(article)
    await session.flush()
    await requirement.set_tiers(session, article, data.tiers)
    await _set_authors(session, pk(article.id), data.author_ids or [pk(editor.id)])
    await _set_tags(session, pk(article.id), data.tags)
    await _after_write(session, renderer, editor, article)
    return article


_SIMPLE_FIELDS = (
    "title", "subtitle", "body_md", "preview_paragraphs", "cover_image_alt", "seo_title",
    "seo_description",
)  # fmt: skip


async def update_article(
    session: AsyncSession,
    renderer: Renderer,
    editor: User,
    article: Article,
    data: ArticleUpdate,
    *,
    if_match: int | None,
) -> Article:
    """Apply a partial edit if `version` matches; keeps the old slug as a redirect."""
    await check_can_edit(session, editor, article)
    check_version(article, data.version if data.version is not None else if_match)
    article_id = pk(article.id)
    sent = data.model_fields_set
    for name in _SIMPLE_FIELDS:
        if name in sent:
            setattr(article, name, getattr(data, name))
    if "excerpt" in sent:
        article.excerpt_override = data.excerpt
    if "visibility" in sent and data.visibility is not None:
        article.visibility = data.visibility.value
    requirement.set_times(article, data.model_dump(include=sent & set(requirement.TIME_FIELDS)))
    await requirement.set_tiers(session, article, data.tiers)
    if "comments" in sent and data.comments is not None:
        article.comments = data.comments.value
    if "cover_image_url" in sent:
        article.cover_image_url = str(data.cover_image_url) if data.cover_image_url else None
    if data.slug and data.slug != article.slug:
        await _change_slug(session, article, data.slug)
    if data.tags is not None:
        await _set_tags(session, article_id, data.tags)
    if data.author_ids is not None:
        if editor.role not in EDITOR_ROLES:
            raise ArticleForbidden("Only editors change an article's authors.")
        await _set_authors(session, article_id, data.author_ids)
    await _render(renderer, article)
    await _bump(session, article)
    await _after_write(session, renderer, editor, article)
    return article


async def _bump(session: AsyncSession, article: Article) -> None:
    """Raise the version with a conditional UPDATE, so two concurrent edits cannot both win."""
    old = article.version
    if not await repository.bump_version(session, pk(article.id), old):
        raise VersionConflict("The article changed while you were saving; reload it.")
    article.version = old + 1
    article.updated_at = utcnow()
    session.add(article)
    await session.flush()


async def _change_slug(session: AsyncSession, article: Article, new_slug: str) -> None:
    article_id = pk(article.id)
    taken = await repository.id_of_slug(session, new_slug)
    redirect = await repository.redirect(session, new_slug)
    if taken not in (None, article_id) or (redirect and redirect.article_id != article_id):
        raise SlugTaken("That slug is used by another article.")
    if redirect is not None:
        await session.delete(redirect)
    session.add(SlugRedirect(old_slug=article.slug, article_id=article_id))
    article.slug = new_slug


async def set_status(
    session: AsyncSession,
    editor: User,
    article: Article,
    status: Status,
    *,
    published_at: datetime | None = None,
) -> Article:
    """Publish, schedule, unpublish or archive (editors and admins only)."""
    if not can_publish(editor):
        raise ArticleForbidden("Only editors and admins publish.")
    now = utcnow()
    if status is Status.scheduled:
        if published_at is None or as_utc(published_at) <= now:
            raise InvalidSchedule("Give a published_at in the future.")
        article.published_at = as_utc(published_at)
    elif status is Status.published:
        when = as_utc(published_at) if published_at else now
        if when > now:
            raise InvalidSchedule("A future time is a schedule; use the schedule action.")
        article.published_at = when
    elif status is Status.draft:
        article.published_at = None
    article.status = status.value
    article.updated_at = now
    session.add(article)
    # The search entry's sort key says whether and since when the article is live.
    await derived.article(session, pk(article.id))
    return article


async def delete_article(session: AsyncSession, editor: User, article: Article) -> None:
    """Delete an article (authors: their own drafts only)."""
    await check_can_edit(session, editor, article)
    await session.delete(article)
    # The page goes with the article (its foreign key); the search entry is removed here.
    await derived.article(session, pk(article.id))


async def restore_revision(
    session: AsyncSession, renderer: Renderer, editor: User, article: Article, revision_id: int
) -> Article:
    """Make a past revision's content current again, as a new revision."""
    revision = await repository.revision(session, revision_id)
    if revision is None or revision.article_id != article.id:
        raise ArticleNotFound("No such revision of this article.")
    change = ArticleUpdate(
        version=article.version,
        title=revision.title,
        subtitle=revision.subtitle,
        body_md=revision.body_md,
        excerpt=revision.excerpt_override,
    )
    return await update_article(session, renderer, editor, article, change, if_match=None)


async def publish_due(session: AsyncSession) -> int:
    """Mark scheduled articles whose time has come as published; give back how many."""
    return await repository.publish_due(session)
