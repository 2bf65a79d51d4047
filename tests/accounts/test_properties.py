"""Property tests: any email or token input gives a clear 4xx, never a 500."""

from __future__ import annotations

import string

from httpx import AsyncClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.accounts.emailaddr import normalise_email

FAST = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@given(st.text(max_size=400))
@FAST
def test_normalise_email_raises_valueerror_or_gives_lowercase(value: str) -> None:
    try:
        result = normalise_email(value)
    except ValueError:
        return
    assert result == result.lower() and "@" in result
    assert normalise_email(result) == result


@given(st.emails())
@FAST
def test_valid_emails_normalise_idempotently(value: str) -> None:
    try:
        once = normalise_email(value)
    except ValueError:
        return  # hypothesis emails include forms email-validator rejects (e.g. reserved TLDs)
    assert normalise_email(once.upper()) == once


async def test_arbitrary_emails_and_tokens_never_500(client: AsyncClient) -> None:
    @given(
        email=st.one_of(st.text(max_size=300), st.emails(), st.integers(), st.none()),
        token=st.one_of(
            st.text(alphabet=string.printable, max_size=300), st.binary(max_size=64).map(repr)
        ),
    )
    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    def run(email: object, token: str) -> None:
        calls.append((email, token))

    calls: list[tuple[object, str]] = []
    run()
    for email, token in calls:
        for path, body in (
            ("/api/v1/auth/password-reset", {"email": email}),
            ("/api/v1/auth/magic-link/verify", {"token": token}),
            ("/api/v1/auth/verify-email", {"token": token}),
            ("/api/v1/auth/refresh", {"refresh_token": token}),
        ):
            response = await client.post(path, json=body)
            # Valid addresses get 202; everything else a problem+json 4xx.
            assert response.status_code < 500, (path, body, response.text)
            if response.status_code >= 400:
                assert response.headers["content-type"] == "application/problem+json"
        header = f"Bearer {token.strip() or 'x'}".encode("latin-1", "replace").decode("latin-1")
        bearer = await client.get("/api/v1/me", headers={"Authorization": header})
        assert 400 <= bearer.status_code < 500
