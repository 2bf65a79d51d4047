"""Comment errors a client can tell apart by `code`."""

from __future__ import annotations

from app.core.errors import Forbidden, NotFound


class CommentNotFound(NotFound):
    code, title = "comment_not_found", "Comment not found"


class CommentsClosed(Forbidden):
    code, title = "comments_closed", "Comments are closed on this article"


class CommentsNeedVerifiedEmail(Forbidden):
    code, title = "comments_members_only", "Comments need a verified account"


class CommentsPaidOnly(Forbidden):
    code, title = "comments_paid_only", "Comments are for paying subscribers"


class CommentBanned(Forbidden):
    code, title = "comment_banned", "You cannot comment at the moment"


class NotYourComment(Forbidden):
    code, title = "comment_forbidden", "Not your comment"


class EditWindowClosed(Forbidden):
    code, title = "edit_window_closed", "Too late to edit this comment"


class ModerationNeedsAdmin(Forbidden):
    code, title = "moderation_needs_admin", "Only an admin can moderate this member"
