"""The tier catalogue: the public page, admins' tier management, plans as a tier's prices
(under one Stripe product per tier), archiving and the default tier."""

from __future__ import annotations

from typing import Any

from httpx import AsyncClient, Response

from tests.billing.conftest import Billing
from tests.factories import Factory


class Tiers:
    """Admin calls on /admin/tiers and /admin/plans, answered as they come."""

    def __init__(self, billing: Billing) -> None:
        self.billing, self.client = billing, billing.client

    async def _headers(self) -> dict[str, str]:
        return (await self.billing.admin()).headers

    async def create(self, **fields: Any) -> Response:
        body = {"name": "Supporter", "slug": "supporter", **fields}
        return await self.client.post(
            "/api/v1/admin/tiers", json=body, headers=await self._headers()
        )

    async def made(self, **fields: Any) -> dict[str, Any]:
        created = await self.create(**fields)
        assert created.status_code == 201, created.text
        return created.json()  # type: ignore[no-any-return]

    async def patch(self, tier_id: int, **fields: Any) -> Response:
        return await self.client.patch(
            f"/api/v1/admin/tiers/{tier_id}", json=fields, headers=await self._headers()
        )

    async def archive(self, tier_id: int) -> Response:
        return await self.client.post(
            f"/api/v1/admin/tiers/{tier_id}/archive", headers=await self._headers()
        )

    async def get(self, tier_id: int) -> Response:
        return await self.client.get(
            f"/api/v1/admin/tiers/{tier_id}", headers=await self._headers()
        )

    async def plan(self, **fields: Any) -> Response:
        body = {"name": "Monthly", "amount": 800, **fields}
        return await self.client.post(
            "/api/v1/admin/plans", json=body, headers=await self._headers()
        )

    async def patch_plan(self, plan_id: int, **fields: Any) -> Response:
        return await self.client.patch(
            f"/api/v1/admin/plans/{plan_id}", json=fields, headers=await self._headers()
        )


def code(response: Response) -> tuple[int, str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return response.status_code, response.json()["code"]


async def public(client: AsyncClient) -> list[dict[str, Any]]:
    answer = await client.get("/api/v1/tiers")
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_the_public_page_lists_free_first_then_visible_active_tiers_with_prices_on_sale(
    billing: Billing, client: AsyncClient
) -> None:
    tiers = Tiers(billing)
    # Made first, sorted last; the default "Paid" tier (sort order 0) comes before it.
    supporter = await tiers.made(
        name="Supporter", slug="supporter", sort_order=5, benefits=["Events", "Our thanks"]
    )
    hidden = await tiers.made(name="Patrons", slug="patrons", visible=False)
    gone = await tiers.made(name="Print", slug="print")
    monthly = (await tiers.plan(name="Monthly")).json()
    retired = (await tiers.plan(name="Retired", amount=500)).json()
    assert (await tiers.patch_plan(retired["id"], active=False)).status_code == 200
    yearly = (await tiers.plan(name="Big", amount=20000, tier_id=supporter["id"])).json()
    await tiers.plan(name="Secret", tier_id=hidden["id"])
    await tiers.plan(name="Paper", tier_id=gone["id"])
    assert (await tiers.archive(gone["id"])).status_code == 200

    page = await public(client)
    assert [(t["slug"], t["free"]) for t in page] == [
        ("free", True),
        ("paid", False),
        ("supporter", False),
    ]
    free, paid, shown = page
    assert free["id"] is None and free["prices"] == []
    assert paid["id"] == monthly["tier_id"]
    assert [p["id"] for p in paid["prices"]] == [monthly["id"]]
    assert shown["benefits"] == ["Events", "Our thanks"]
    assert shown["prices"] == [
        {
            k: yearly[k]
            for k in (
                "id",
                "tier_id",
                "name",
                "description",
                "interval",
                "amount",
                "currency",
                "trial_days",
            )
        }  # fmt: skip
    ]


async def test_the_public_page_is_cached_like_the_other_public_lists_and_follows_writes(
    billing: Billing, client: AsyncClient
) -> None:
    tiers = Tiers(billing)
    first = await client.get("/api/v1/tiers")
    assert first.headers["cache-control"].startswith("public, max-age=")
    assert "Authorization" in first.headers["vary"]
    again = await client.get("/api/v1/tiers", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    made = await tiers.made(name="Supporter", slug="supporter")
    assert "supporter" in [t["slug"] for t in await public(client)]
    assert (await tiers.patch(made["id"], name="Friends")).status_code == 200
    assert "Friends" in [t["name"] for t in await public(client)]
    assert (await tiers.patch(made["id"], visible=False)).status_code == 200
    assert "supporter" not in [t["slug"] for t in await public(client)]


async def test_admins_create_read_and_edit_tiers(billing: Billing) -> None:
    tiers = Tiers(billing)
    made = await tiers.made(
        name="  Supporter  tier ", slug="supporter", description="More.", benefits=["Events"]
    )
    assert {k: made[k] for k in ("name", "slug", "visible", "active", "default", "prices")} == {
        "name": "Supporter tier",
        "slug": "supporter",
        "visible": True,
        "active": True,
        "default": False,
        "prices": [],
    }
    edited = await tiers.patch(made["id"], description="Even more.", benefits=[], sort_order=3)
    assert edited.status_code == 200, edited.text
    assert (await tiers.get(made["id"])).json() == edited.json()
    assert edited.json()["benefits"] == [] and edited.json()["sort_order"] == 3
    listed = await billing.client.get(
        "/api/v1/admin/tiers", headers=(await billing.admin()).headers
    )
    assert made["id"] in [t["id"] for t in listed.json()]
    audit = await billing.client.get(
        f"/api/v1/admin/audit?entity=tier&entity_id={made['id']}",
        headers=(await billing.admin()).headers,
    )
    entries = sorted(audit.json()["items"], key=lambda entry: entry["id"])
    assert [(e["action"], e["actor_id"]) for e in entries] == [
        ("create", (await billing.admin()).id),
        ("update", (await billing.admin()).id),
    ]


async def test_bad_tier_input_gets_stable_codes(billing: Billing) -> None:
    tiers = Tiers(billing)
    made = await tiers.made()
    assert code(await tiers.create(name="Again")) == (409, "tier_slug_taken")
    assert code(await tiers.create(slug="free")) == (422, "tier_slug_reserved")
    for slug in ("Supporter", "two words", "-edge", "a--b", "", "x" * 101):
        assert code(await tiers.create(slug=slug)) == (422, "validation_error"), slug
    assert code(await tiers.create(slug="many", benefits=["b"] * 21)) == (422, "validation_error")
    assert code(await tiers.create(slug="ctl", benefits=["line\nbreak"])) == (
        422,
        "validation_error",
    )
    assert code(await tiers.get(999999)) == (404, "tier_not_found")
    assert code(await tiers.patch(999999, name="X")) == (404, "tier_not_found")
    assert code(await tiers.archive(999999)) == (404, "tier_not_found")
    # The slug never changes: articles and segments will name tiers by it.
    assert code(await tiers.patch(made["id"], slug="other")) == (422, "validation_error")
    assert code(await tiers.patch(made["id"], name=None)) == (422, "validation_error")
    assert code(await tiers.patch(made["id"], benefits=None)) == (422, "validation_error")


async def test_plans_name_their_tier_and_default_to_the_default_tier(billing: Billing) -> None:
    tiers = Tiers(billing)
    supporter = await tiers.made()
    plain = await tiers.plan()
    assert plain.status_code == 201, plain.text
    default = (await tiers.get(plain.json()["tier_id"])).json()
    assert (default["slug"], default["name"], default["default"]) == ("paid", "Paid", True)
    named = (await tiers.plan(name="Big", tier_id=supporter["id"])).json()
    assert named["tier_id"] == supporter["id"]
    assert [p["id"] for p in (await tiers.get(supporter["id"])).json()["prices"]] == [named["id"]]
    assert code(await tiers.plan(tier_id=999999)) == (422, "unknown_tier")
    # A plan stays in its tier: its price lives under the tier's product.
    assert code(await tiers.patch_plan(named["id"], tier_id=default["id"])) == (
        422,
        "validation_error",
    )


async def test_each_tier_has_one_stripe_product_holding_its_plans_prices(
    billing: Billing,
) -> None:
    tiers = Tiers(billing)
    supporter = await tiers.made()
    first = (await tiers.plan(name="Monthly", tier_id=supporter["id"])).json()
    second = (await tiers.plan(name="Yearly", interval="year", tier_id=supporter["id"])).json()
    other = (await tiers.plan(name="Standard")).json()
    product = (await tiers.get(supporter["id"])).json()["stripe_product_id"]
    assert product and first["stripe_product_id"] == second["stripe_product_id"] == product
    assert other["stripe_product_id"] not in (None, product)
    stripe = billing.standin.client()
    for plan in (first, second):
        assert stripe.plans.retrieve(plan["stripe_price_id"]).product == product
    assert stripe.products.retrieve(product).name == "Supporter"


async def test_archiving_takes_a_tier_and_its_plans_off_sale_until_restored(
    billing: Billing, factory: Factory, client: AsyncClient
) -> None:
    tiers = Tiers(billing)
    supporter = await tiers.made()
    plan = (await tiers.plan(name="Big", tier_id=supporter["id"])).json()
    archived = await tiers.archive(supporter["id"])
    assert archived.status_code == 200, archived.text
    assert archived.json()["active"] is False
    assert [p["active"] for p in archived.json()["prices"]] == [False]
    on_sale = (await client.get("/api/v1/billing/plans")).json()
    assert plan["id"] not in [p["id"] for p in on_sale]
    reader = await factory.member()
    checkout = await client.post(
        "/api/v1/billing/checkout", json={"plan_id": plan["id"]}, headers=reader.headers
    )
    assert code(checkout) == (404, "plan_not_found")
    assert code(await tiers.plan(tier_id=supporter["id"])) == (409, "tier_archived")
    assert code(await tiers.patch_plan(plan["id"], active=True)) == (409, "tier_archived")
    assert code(await tiers.patch(supporter["id"], default=True)) == (409, "tier_archived")

    restored = await tiers.patch(supporter["id"], active=True)
    assert restored.json()["active"] is True
    # Its plans stay off sale until staff put each back.
    assert [p["active"] for p in restored.json()["prices"]] == [False]
    assert (await tiers.patch_plan(plan["id"], active=True)).status_code == 200
    assert plan["id"] in [p["id"] for p in (await client.get("/api/v1/billing/plans")).json()]


async def test_the_default_tier_moves_but_is_never_archived_or_left_without(
    billing: Billing,
) -> None:
    tiers = Tiers(billing)
    first = (await tiers.plan()).json()["tier_id"]
    assert code(await tiers.archive(first)) == (409, "tier_is_default")
    assert code(await tiers.patch(first, active=False)) == (409, "tier_is_default")
    assert code(await tiers.patch(first, default=False)) == (409, "tier_is_default")
    supporter = await tiers.made()
    moved = await tiers.patch(supporter["id"], default=True)
    assert moved.status_code == 200 and moved.json()["default"] is True
    assert (await tiers.get(first)).json()["default"] is False
    assert (await tiers.plan(name="Next")).json()["tier_id"] == supporter["id"]
    assert (await tiers.archive(first)).status_code == 200
