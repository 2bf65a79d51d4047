"""Newsletter errors a client can tell apart by `code`."""

from __future__ import annotations

from app.core.errors import AppError, Conflict, InvalidInput, NotFound


class NewsletterNotFound(NotFound):
    code, title = "newsletter_not_found", "Newsletter not found"


class IssueNotFound(NotFound):
    code, title = "issue_not_found", "Newsletter issue not found"


class IssueStateConflict(Conflict):
    code, title = "issue_state_conflict", "Not possible in the issue's current state"


class ArticleNotLive(Conflict):
    code, title = "article_not_live", "The issue's article is not live"


class ScheduleBeforeArticle(InvalidInput):
    code, title = "schedule_before_article", "Scheduled before the article goes live"


class InvalidUnsubscribeToken(AppError):
    status, code, title = 400, "unsubscribe_token_invalid", "Unsubscribe link not valid"


class NotAllowedToSubscribe(InvalidInput):
    code, title = "newsletter_not_open", "This newsletter is not open to you"


class VerifyEmailFirst(Conflict):
    code, title = "email_not_verified", "Confirm your email address first"


class UnknownTier(InvalidInput):
    code, title = "unknown_tier", "No tier has that slug"


class InvalidSegment(InvalidInput):
    code, title = "invalid_segment", "Segment and tiers do not agree"
