"""`broadsheet seed-demo` builds a realistic archive once, and only once."""

from __future__ import annotations

from fastapi import FastAPI
from httpx import AsyncClient

from app.core.config import Settings
from app.seed import seed_demo


async def test_seed_demo_is_idempotent_and_serves_an_archive(
    app: FastAPI, client: AsyncClient, settings: Settings
) -> None:
    first = await seed_demo(settings)
    second = await seed_demo(settings)
    assert first[-1] == "demo articles created: 36"
    assert second[-1] == "demo articles created: 0"
    assert first[0] == second[0]  # same admin password both times
    page = (await client.get("/api/v1/articles?limit=100")).json()
    visibilities = [item["visibility"] for item in page["items"]]
    assert {v: visibilities.count(v) for v in set(visibilities)} == {
        "public": 12,
        "members": 12,
        "paid": 12,
    }
    paid = next(i for i in page["items"] if i["visibility"] == "paid")
    article = (await client.get(f"/api/v1/articles/{paid['slug']}")).json()
    assert article["content_html"] is None and article["paywall"]["required"] == "paid"
    login = await client.post(
        "/api/v1/auth/login",
        json={"email": "admin@broadsheet.example", "password": first[0].rsplit(" / ", 1)[1]},
    )
    assert login.status_code == 200
