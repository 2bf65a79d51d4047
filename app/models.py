"""Every table, imported in one place so Alembic and the tests see the whole schema."""

from __future__ import annotations

from sqlmodel import SQLModel

from app.accounts.models import Consent, EmailToken, RefreshToken, User
from app.admin.models import AuditEntry, MemberLabel
from app.articles.models import (
    Article,
    ArticleAuthor,
    ArticleRevision,
    ArticleTag,
    ArticleTier,
    SlugRedirect,
    Tag,
)
from app.billing.models import (
    BillingCustomer,
    BillingNotice,
    CheckoutRecord,
    CompGrant,
    Payment,
    Plan,
    StripeEvent,
    Subscription,
    SubscriptionChange,
    Tier,
)
from app.comments.models import (
    Comment,
    CommentBan,
    CommentLike,
    CommentPreference,
    CommentReport,
)
from app.core.cache.version import ContentVersion
from app.core.job_runs import JobRun
from app.core.mail_outbox import OutboxMessage
from app.newsletter.models import (
    Delivery,
    Newsletter,
    NewsletterIssue,
    NewsletterSubscription,
    Subscriber,
)

__all__ = [
    "Article",
    "AuditEntry",
    "ContentVersion",
    "JobRun",
    "OutboxMessage",
    "MemberLabel",
    "BillingCustomer",
    "BillingNotice",
    "CheckoutRecord",
    "CompGrant",
    "Payment",
    "Plan",
    "StripeEvent",
    "Subscription",
    "SubscriptionChange",
    "Tier",
    "ArticleAuthor",
    "ArticleRevision",
    "ArticleTag",
    "ArticleTier",
    "Comment",
    "CommentBan",
    "CommentLike",
    "CommentPreference",
    "CommentReport",
    "Consent",
    "Delivery",
    "Newsletter",
    "NewsletterIssue",
    "NewsletterSubscription",
    "Subscriber",
    "EmailToken",
    "RefreshToken",
    "SlugRedirect",
    "Tag",
    "User",
    "include_object",
    "metadata",
]

# Tables made by hand in migrations (search indexes differ per dialect) that the models do
# not describe; autogenerate and the models-vs-migrations test must leave them alone.
UNMODELLED_PREFIXES = ("article_search",)


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    """Tell Alembic whether to compare an object (skips the hand-made search tables)."""
    del obj, reflected, compare_to
    return not (type_ == "table" and name is not None and name.startswith(UNMODELLED_PREFIXES))


metadata = SQLModel.metadata
