"""Request and response bodies of the billing API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.billing.models import Interval
from app.core.fields import Collapsed, Id, Int32, OneLine, Text, UtcDatetime


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _refuse_nulls(model: BaseModel, names: tuple[str, ...]) -> None:
    for name in names:
        if name in model.model_fields_set and getattr(model, name) is None:
            raise ValueError(f"{name} cannot be null")


class PlanOut(BaseModel):
    id: int
    tier_id: int
    name: str
    description: str
    interval: Interval
    amount: int
    currency: str
    trial_days: int


class PlanAdminOut(PlanOut):
    stripe_product_id: str | None
    stripe_price_id: str | None
    active: bool
    sort_order: int


class PlanCreate(Strict):
    tier_id: Id | None = Field(default=None, description="The tier; by default, the default tier.")
    name: Collapsed = Field(min_length=1, max_length=120)
    description: Text = Field(default="", max_length=1000)
    interval: Interval = Interval.month
    amount: int = Field(ge=0, le=100_000_000)
    currency: str = Field(default="usd", pattern=r"^[a-z]{3}$")
    trial_days: int = Field(default=0, ge=0, le=365)
    stripe_price_id: str | None = Field(default=None, max_length=255)
    active: bool = True
    sort_order: Int32 = 0


class PlanUpdate(Strict):
    """Only the fields sent change; a field that cannot be empty cannot be sent as null."""

    name: Collapsed | None = Field(default=None, min_length=1, max_length=120)
    description: Text | None = Field(default=None, max_length=1000)
    trial_days: int | None = Field(default=None, ge=0, le=365)
    active: bool | None = None
    sort_order: Int32 | None = None
    stripe_price_id: str | None = Field(default=None, max_length=255)

    @model_validator(mode="after")
    def _no_null(self) -> PlanUpdate:
        _refuse_nulls(self, ("name", "description", "trial_days", "active", "sort_order"))
        return self


TierSlug = Annotated[
    str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
]
Benefit = Annotated[OneLine, Field(min_length=1, max_length=200)]
Benefits = Annotated[list[Benefit], Field(max_length=20)]


class TierCreate(Strict):
    name: Collapsed = Field(min_length=1, max_length=120)
    slug: TierSlug
    description: Text = Field(default="", max_length=1000)
    benefits: Benefits = []
    visible: bool = True
    sort_order: Int32 = 0


class TierUpdate(Strict):
    """Only the fields sent change. The slug stays: articles and segments will name tiers by
    it. `default: true` makes this the tier plans created without one go into."""

    name: Collapsed | None = Field(default=None, min_length=1, max_length=120)
    description: Text | None = Field(default=None, max_length=1000)
    benefits: Benefits | None = None
    visible: bool | None = None
    sort_order: Int32 | None = None
    active: bool | None = None
    default: bool | None = None

    @model_validator(mode="after")
    def _no_null(self) -> TierUpdate:
        _refuse_nulls(self, tuple(type(self).model_fields))
        return self


class TierOut(BaseModel):
    """A tier on the public page; the free tier (`free: true`, no id) comes first."""

    id: int | None
    slug: str
    name: str
    description: str
    benefits: list[str]
    free: bool
    prices: list[PlanOut]


class TierAdminOut(BaseModel):
    id: int
    slug: str
    name: str
    description: str
    benefits: list[str]
    visible: bool
    sort_order: int
    active: bool
    default: bool
    stripe_product_id: str | None
    created_at: datetime
    prices: list[PlanAdminOut]


class CheckoutIn(Strict):
    plan_id: Id
    success_url: str | None = Field(default=None, max_length=2000)
    cancel_url: str | None = Field(default=None, max_length=2000)
    article_slug: str | None = Field(default=None, max_length=200)


class CheckoutOut(BaseModel):
    checkout_url: str


class PortalIn(Strict):
    return_url: str | None = Field(default=None, max_length=2000)


class PortalOut(BaseModel):
    portal_url: str


class PlanChangeIn(Strict):
    plan_id: Id


class MySubscription(BaseModel):
    access_level: str
    status: str | None
    plan: PlanOut | None
    kept_plan: PlanOut | None = Field(
        default=None, description="After a downgrade at period end: the plan kept until then."
    )
    kept_until: datetime | None = None
    cancel_at_period_end: bool
    renews_at: datetime | None
    ends_at: datetime | None
    in_grace_period: bool
    grace_ends_at: datetime | None
    complimentary: bool
    complimentary_until: datetime | None


class CompIn(Strict):
    ends_at: UtcDatetime | None = None
    reason: OneLine = Field(default="", max_length=500)
    tier: str | None = Field(
        default=None,
        max_length=100,
        description="The one tier the comp gives, by slug; left out, it gives every tier.",
    )


class CompOut(BaseModel):
    id: int
    user_id: int
    # The tier's slug, or None for a comp of every tier.
    tier: str | None
    starts_at: datetime
    ends_at: datetime | None
    reason: str


class EventOut(BaseModel):
    id: int
    event_id: str
    type: str
    status: str
    created: int
    received_at: datetime
    processed_at: datetime | None
    attempts: int
    error: str | None
