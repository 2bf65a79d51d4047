"""Request and response bodies of the articles API."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, model_validator

from app.articles.models import CommentSetting, Status, Visibility
from app.core.fields import Collapsed, Id, Int32, Text, UtcDatetime

_SLUG = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
SlugStr = Annotated[str, Field(min_length=1, max_length=200, pattern=_SLUG)]
TagSlug = Annotated[str, Field(min_length=1, max_length=100, pattern=_SLUG)]
TagName = Annotated[Collapsed, Field(min_length=1, max_length=100)]
TierSlug = Annotated[str, Field(min_length=1, max_length=100, pattern=_SLUG)]
GatedDays = Annotated[int, Field(ge=1, le=3650)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArticleBase(Strict):
    title: Collapsed = Field(min_length=1, max_length=300)
    subtitle: Collapsed = Field(default="", max_length=500)
    body_md: Text = Field(default="", max_length=500_000)
    excerpt: Collapsed | None = Field(default=None, max_length=1000)
    preview_paragraphs: int | None = Field(default=None, ge=1, le=50)
    visibility: Visibility = Visibility.public
    tiers: list[TierSlug] = Field(
        default_factory=list, max_length=20, description="For visibility `tiers`: who may read."
    )
    free_after: UtcDatetime | None = Field(
        default=None, description="Embargo: gated by its visibility until then, public after."
    )
    free_until: UtcDatetime | None = Field(
        default=None, description="Free while breaking: public until then, gated after."
    )
    gated_after_days: GatedDays | None = Field(
        default=None, description="Automatic paywall: public this many days after publication."
    )
    auto_paywall: bool = Field(
        default=True, description="A public article follows the publication's automatic paywall."
    )
    cover_image_url: AnyHttpUrl | None = None
    cover_image_alt: Collapsed = Field(default="", max_length=500)
    seo_title: Collapsed | None = Field(default=None, max_length=300)
    seo_description: Collapsed | None = Field(default=None, max_length=500)
    comments: CommentSetting = CommentSetting.everyone
    tags: list[TagName] = Field(default_factory=list, max_length=20)
    author_ids: list[Id] | None = Field(default=None, max_length=10)


class ArticleCreate(ArticleBase):
    slug: SlugStr | None = None


class ArticleUpdate(Strict):
    """Only the fields sent are changed; `version` (or If-Match) guards against stale writes."""

    version: Int32 | None = None
    slug: SlugStr | None = None
    title: Collapsed | None = Field(default=None, min_length=1, max_length=300)
    subtitle: Collapsed | None = Field(default=None, max_length=500)
    body_md: Text | None = Field(default=None, max_length=500_000)
    excerpt: Collapsed | None = Field(default=None, max_length=1000)
    preview_paragraphs: int | None = Field(default=None, ge=1, le=50)
    visibility: Visibility | None = None
    tiers: list[TierSlug] | None = Field(default=None, max_length=20)
    free_after: UtcDatetime | None = None
    free_until: UtcDatetime | None = None
    gated_after_days: GatedDays | None = None
    auto_paywall: bool | None = None
    cover_image_url: AnyHttpUrl | None = None
    cover_image_alt: Collapsed | None = Field(default=None, max_length=500)
    seo_title: Collapsed | None = Field(default=None, max_length=300)
    seo_description: Collapsed | None = Field(default=None, max_length=500)
    comments: CommentSetting | None = None
    tags: list[TagName] | None = Field(default=None, max_length=20)
    author_ids: list[Id] | None = Field(default=None, max_length=10)

    @model_validator(mode="after")
    def _no_null_text(self) -> ArticleUpdate:
        for name in ("title", "subtitle", "body_md", "cover_image_alt", "auto_paywall"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


class ScheduleIn(Strict):
    published_at: UtcDatetime


class PublishIn(Strict):
    published_at: UtcDatetime | None = Field(
        default=None, description="Backdate the publication; defaults to now."
    )


class AuthorOut(BaseModel):
    id: int
    name: str


class TagOut(BaseModel):
    slug: str
    name: str


class AccessOut(BaseModel):
    granted: bool
    required: Visibility = Field(description="What the article requires now (time rules applied).")
    reason: str = Field(
        description="public, entitled, signin_required, subscription_required, tier_required, "
        "subscription_lapsed or payment_failed."
    )
    tiers: list[str] = Field(description="For `tiers`: the tiers (slugs) that unlock it.")
    notice: str | None = Field(
        description="payment_failed while a past-due subscription still gives access."
    )


class OfferedTier(BaseModel):
    slug: str
    name: str


class PaywallOut(BaseModel):
    required: Visibility
    reason: str
    reader: str = Field(description="anonymous or member")
    message: str
    tiers: list[OfferedTier] = Field(description="The tiers on sale that would unlock it.")
    plans: list[dict[str, Any]] = Field(description="Their plans on sale, as /billing/plans.")
    checkout: dict[str, Any] = Field(
        description="Where to go: signup, checkout, or the billing portal (payment_failed)."
    )


class SeoOut(BaseModel):
    title: str
    description: str


class CoverOut(BaseModel):
    url: str
    alt: str


class ArticleTeaser(BaseModel):
    slug: str
    title: str
    subtitle: str
    excerpt: str
    visibility: Visibility
    tiers: list[str]
    free_after: datetime | None
    free_until: datetime | None
    gated_after: datetime | None = Field(description="When the automatic paywall closes.")
    published_at: datetime | None
    reading_minutes: int
    authors: list[AuthorOut]
    tags: list[TagOut]
    cover: CoverOut | None


class ArticlePublic(ArticleTeaser):
    updated_at: datetime
    word_count: int
    access: AccessOut
    content_html: str | None = Field(description="The full text; null without access.")
    excerpt_html: str = Field(description="The free part, before the paywall.")
    paywall: PaywallOut | None
    seo: SeoOut
    structured_data: dict[str, Any]
    comments: str
    comment_count: int


class ArticleStaff(BaseModel):
    id: int
    slug: str
    title: str
    subtitle: str
    body_md: str
    excerpt: str
    excerpt_override: str | None
    preview_paragraphs: int | None
    visibility: Visibility
    tiers: list[str]
    free_after: datetime | None
    free_until: datetime | None
    gated_after_days: int | None
    auto_paywall: bool
    gated_after: datetime | None
    status: Status
    published_at: datetime | None
    created_at: datetime
    updated_at: datetime
    version: int
    cover_image_url: str | None
    cover_image_alt: str
    seo_title: str | None
    seo_description: str | None
    comments: CommentSetting
    word_count: int
    reading_minutes: int
    has_paywall_marker: bool
    content_html: str
    preview_html: str
    authors: list[AuthorOut]
    tags: list[TagOut]


class RevisionOut(BaseModel):
    id: int
    version: int
    editor_id: int | None
    created_at: datetime
    title: str
    subtitle: str
    body_md: str


class TagCount(TagOut):
    articles: int


class TagStaff(TagOut):
    """A tag as staff see it: every article it is on counts, drafts included."""

    id: int
    articles: int


class TagUpdate(Strict):
    """A tag renamed: its name, its slug, or both. Its articles' pages and search entries
    follow in the same request."""

    name: TagName | None = None
    slug: TagSlug | None = None

    @model_validator(mode="after")
    def _something(self) -> TagUpdate:
        if self.name is None and self.slug is None:
            raise ValueError("Send a name, a slug, or both.")
        return self


class AuthorCount(AuthorOut):
    articles: int


class ArchiveMonth(BaseModel):
    year: int
    month: int
    articles: int


class SearchHit(BaseModel):
    article: ArticleTeaser
    snippet: str = Field(description="HTML-escaped text with <mark> around matches.")


# Search (issue 18)


class SearchSort(StrEnum):
    relevance = "relevance"
    date = "date"


class SearchPage(BaseModel):
    items: list[SearchHit]
    next_cursor: str | None
    total: int = Field(description="Matches counted up to 300 by relevance, 1,000 by date.")
    total_capped: bool = Field(description="True when there are more than `total`.")


class SuggestedTitle(BaseModel):
    slug: str
    title: str


class Suggestions(BaseModel):
    titles: list[SuggestedTitle] = Field(description="Live articles, newest first.")
    tags: list[TagOut]
    authors: list[AuthorOut]


# Plain dataclasses of the reader paths (no validation on the hot path).


@dataclass(frozen=True)
class ListFilters:
    tag: str | None = None
    author: int | None = None
    visibility: str | None = None
    year: int | None = None
    month: int | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class Extras:
    """Authors, tags and tiers of a set of articles, fetched in three queries."""

    authors: dict[int, list[tuple[int, str]]] = field(default_factory=lambda: defaultdict(list))
    tags: dict[int, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    tiers: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))

    def of(self, article_id: int) -> tuple[list[tuple[int, str]], list[tuple[str, str]]]:
        """Give back one article's authors and tags."""
        return self.authors.get(article_id, []), self.tags.get(article_id, [])


@dataclass(frozen=True)
class Publication:
    """What a stored page is rendered with besides its article: the publication's URL and
    its automatic-paywall days (a page rendered with others is stale)."""

    public_url: str
    paywall_days: int | None = None


@dataclass(slots=True)
class PageSource:
    """What an article page is rendered from (satisfies `presenter.Readable`), with the URL
    its stored page was rendered for, if it has one."""

    id: int
    slug: str
    title: str
    subtitle: str
    excerpt: str
    visibility: str
    published_at: datetime | None
    updated_at: datetime
    reading_minutes: int
    word_count: int
    cover_image_url: str | None
    cover_image_alt: str
    seo_title: str | None
    seo_description: str | None
    comments: str
    preview_html: str
    content_html: str
    free_after: datetime | None
    free_until: datetime | None
    gated_after_days: int | None
    auto_paywall: bool
    excerpt_override: str | None
    page_url: str | None
    page_paywall_days: int | None
    gated_at: datetime | None = None  # as stored; worked out again when the page is rendered

    @property
    def publication(self) -> Publication | None:
        """The publication its stored page was rendered with, if it has one."""
        if self.page_url is None:
            return None
        return Publication(self.page_url, self.page_paywall_days)


@dataclass(slots=True, frozen=True)
class PageRead:
    """A live article's stored page, as the article route reads it."""

    rules: bytes
    head: bytes
    structured: bytes
    content: bytes
    comment_count: int
