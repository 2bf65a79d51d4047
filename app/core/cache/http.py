"""HTTP caching for reader-facing GETs: shared caches may keep anonymous answers only."""

from __future__ import annotations

from fastapi import Request, Response

from app.core.cache.store import Answer, etag_of

ANONYMOUS_MAX_AGE = 60


def cached_response(
    request: Request,
    body: bytes,
    *,
    anonymous: bool,
    media_type: str = "application/json",
    etag: str | None = None,
) -> Response:
    """Give back `body` with cache headers; anonymous ones get an ETag and may answer 304.

    `etag` saves hashing a body whose tag is already known (a response-cache entry).
    A signed-in reader's answer is `private, no-store` with no ETag, so a full-text answer
    can never validate a later anonymous request into a 304.
    """
    headers = {"Vary": "Authorization"}
    if not anonymous:
        headers["Cache-Control"] = "private, no-store"
        return Response(body, media_type=media_type, headers=headers)
    tag = etag or etag_of(body)
    headers["Cache-Control"] = f"public, max-age={ANONYMOUS_MAX_AGE}"
    headers["ETag"] = tag
    given = request.headers.get("if-none-match", "")
    if given and tag in {t.strip() for t in given.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def entry_response(request: Request, entry: Answer, *, anonymous: bool) -> Response:
    """Give back a cached or fresh answer with the cache headers that suit its reader."""
    if not anonymous:
        # No ETag for a signed-in reader: reading entry.etag would hash the body for nothing.
        return cached_response(request, entry.body, anonymous=False)
    return cached_response(request, entry.body, anonymous=True, etag=entry.etag)
