"""Email address normalisation: one canonical form for storage, lookups and rate-limit keys."""

from __future__ import annotations

from email_validator import EmailNotValidError, validate_email


def normalise_email(value: str) -> str:
    """Give back the canonical (lower-case, IDNA) form of an address, or raise ValueError."""
    candidate = value.strip()
    if not candidate or len(candidate) > 320 or any(ord(ch) < 32 for ch in candidate):
        raise ValueError("not a valid email address")
    try:
        result = validate_email(candidate, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError("not a valid email address") from exc
    return result.normalized.lower()
