"""Request and response bodies of the billing API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.billing.models import Interval
from app.core.fields import Collapsed, Id, Int32, OneLine, Text, UtcDatetime


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlanOut(BaseModel):
    id: int
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
        for name in ("name", "description", "trial_days", "active", "sort_order"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be null")
        return self


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


class MySubscription(BaseModel):
    access_level: str
    status: str | None
    plan: PlanOut | None
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


class CompOut(BaseModel):
    id: int
    user_id: int
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
