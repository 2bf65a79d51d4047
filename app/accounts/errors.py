"""The account errors a client can tell apart by `code`."""

from __future__ import annotations

from app.core.errors import AppError, Forbidden, InvalidInput, Unauthorized


class InvalidCredentials(Unauthorized):
    code = "invalid_credentials"
    title = "Email or password is wrong"


class RefreshRejected(Unauthorized):
    code = "refresh_token_invalid"
    title = "Refresh token invalid"


class RefreshReused(Unauthorized):
    code = "refresh_token_reused"
    title = "Refresh token reused"
    keep_writes = True  # the revoked family must stay revoked


class TokenRejected(AppError):
    status, code, title = 400, "token_invalid", "Token invalid"


class TokenUsed(TokenRejected):
    code, title = "token_used", "Token already used"


class TokenExpired(TokenRejected):
    code, title = "token_expired", "Token expired"


class TermsNotAccepted(InvalidInput):
    code = "terms_not_accepted"
    title = "The terms must be accepted"


class WeakPassword(InvalidInput):
    code = "password_invalid"
    title = "Password not acceptable"


class EmailTaken(InvalidInput):
    code = "email_unavailable"
    title = "Email cannot be used"


class ReauthRequired(Forbidden):
    code = "reauthentication_required"
    title = "Current password or a fresh magic link required"


class ReauthLinkSpent(ReauthRequired):
    """A sign-in link that passed the re-auth check was used up before the step that spends
    it: the same answer, but not a guess, so re-auth limits do not count it."""


class AccountDisabled(Forbidden):
    code = "account_disabled"
    title = "Account disabled"


class CsrfFailed(Forbidden):
    code = "csrf_failed"
    title = "CSRF token missing or wrong"


class SignupClosed(Forbidden):
    code = "signup_closed"
    title = "Sign-up is closed"
