"""Who may comment: one pure function of the article's setting and the reader."""

from __future__ import annotations

from app.access.entitlements import AccessLevel
from app.accounts.models import Role
from app.articles.models import CommentSetting
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


# Staff at or above an editor's rank are moderated only by admins, so an editor can neither
# silence an admin nor settle a dispute with another editor by hiding their words.
ADMIN_MODERATED = frozenset({Role.editor.value, Role.admin.value})


def may_moderate(actor_role: str, target_role: str | None) -> bool:
    """Give back whether staff with `actor_role` may ban, hide or delete for `target_role`.

    `target_role` is None for a comment whose author deleted their account.
    """
    return actor_role == Role.admin.value or target_role not in ADMIN_MODERATED
