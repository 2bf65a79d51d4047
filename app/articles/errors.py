"""The article errors a client can tell apart by `code`."""

from __future__ import annotations

from app.core.errors import AppError, Conflict, Forbidden, InvalidInput, NotFound


class ArticleNotFound(NotFound):
    code, title = "article_not_found", "Article not found"


class TagNotFound(NotFound):
    code, title = "tag_not_found", "Tag not found"


class ArticleForbidden(Forbidden):
    code, title = "article_forbidden", "Not allowed on this article"


class VersionConflict(Conflict):
    code, title = "version_conflict", "The article changed since you loaded it"


class VersionRequired(AppError):
    status, code, title = 428, "version_required", "Send If-Match or version"


class SlugTaken(Conflict):
    code, title = "slug_taken", "Slug already in use"


class InvalidAuthors(InvalidInput):
    code, title = "invalid_authors", "Authors must be staff accounts"


class InvalidSchedule(InvalidInput):
    code, title = "invalid_schedule", "Schedule time must be in the future"


class InvalidSearch(InvalidInput):
    code, title = "invalid_search", "Search query not usable"


class ArticleMoved(Exception):
    """An old slug: the page answers with a redirect to `slug` instead of a body."""

    def __init__(self, slug: str) -> None:
        super().__init__(slug)
        self.slug = slug


class InvalidRequirement(InvalidInput):
    code, title = "invalid_requirement", "Visibility and tiers do not agree"


class UnknownTier(InvalidInput):
    code, title = "unknown_tier", "No tier has that slug"
