"""Who may comment: one pure function of the article's setting and the reader."""

from __future__ import annotations

from app.articles.models import CommentSetting
from app.billing.entitlements import AccessLevel
from app.comments.errors import (
    CommentsClosed,
    CommentsNeedVerifiedEmail,
    CommentsPaidOnly,
)
from app.core.errors import AppError, Unauthorized


def refusal(setting: str, level: AccessLevel, *, verified: bool) -> AppError | None:
    """Give back why a reader may not comment, or None when they may.

    `everyone`: any signed-in reader; `members`: a signed-in reader with a verified email;
    `paid`: paid access; `off`: nobody. Unknown settings are treated as `off`.
    """
    if setting not in {s.value for s in CommentSetting} or setting == CommentSetting.off.value:
        return CommentsClosed("Comments are closed on this article.")
    if level is AccessLevel.anonymous:
        return Unauthorized("Sign in to comment.", code="authentication_required")
    if setting == CommentSetting.members.value and not verified:
        return CommentsNeedVerifiedEmail("Confirm your email address to comment.")
    if setting == CommentSetting.paid.value and level is not AccessLevel.paid:
        return CommentsPaidOnly("Comments on this article are for paying subscribers.")
    return None
