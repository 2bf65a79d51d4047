"""What is sold and what was paid: plans, checkouts, payments, billing notices, complimentary
grants; and the generic writes of billing's entities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from app.billing.gateway import CheckoutRequest, CheckoutSession
from app.billing.models import BillingNotice, CheckoutRecord, CompGrant, Payment, Plan
from app.billing.schemas import PlanOut
from app.core.db import Query, Reads, insert_ignoring_duplicates, utcnow


async def save(session: AsyncSession, entity: SQLModel) -> None:
    """Have the session write `entity` (new or changed) at its next flush."""
    session.add(entity)


async def delete(session: AsyncSession, entity: SQLModel) -> None:
    await session.delete(entity)


# --- plans ----------------------------------------------------------------------------------


async def plans_on_sale(session: AsyncSession) -> Sequence[Plan]:
    rows = await session.exec(
        select(Plan).where(Plan.active == True).order_by(col(Plan.sort_order), col(Plan.id))  # noqa: E712
    )
    return rows.all()


# The same plans as one direct read (`db.reads`), for the paywall of a refused article page,
# which opens no ORM session. The columns are PlanOut's fields, so the paywall's plans have the
# shape /billing/plans has.
_PLAN_KEYS = tuple(PlanOut.model_fields)
_PLANS_SQL = f"""SELECT {", ".join(_PLAN_KEYS)}
FROM plan WHERE active = :active ORDER BY sort_order, id"""  # noqa: S608 - field names only
PLANS = Query.portable(_PLANS_SQL)


async def plans_on_sale_direct(reads: Reads) -> list[dict[str, Any]]:
    """The active plans in display order, shaped like `billing.schemas.PlanOut`."""
    return [
        dict(zip(_PLAN_KEYS, row, strict=True)) for row in await reads.all(PLANS, {"active": True})
    ]


async def all_plans(session: AsyncSession) -> Sequence[Plan]:
    rows = await session.exec(select(Plan).order_by(col(Plan.sort_order), col(Plan.id)))
    return rows.all()


async def plan(session: AsyncSession, plan_id: int) -> Plan | None:
    return await session.get(Plan, plan_id)


async def add(session: AsyncSession, entity: SQLModel) -> None:
    """Insert `entity` now, so the ids the database gives it are known."""
    session.add(entity)
    await session.flush()


# --- payments, notices, checkouts, grants ---------------------------------------------------


async def insert_payment(session: AsyncSession, **values: Any) -> bool:
    """Record a payment unless its invoice is recorded already; True when this one was."""
    result = await session.exec(insert_ignoring_duplicates(Payment).values(**values))
    return bool(result.rowcount)


async def payments_of(session: AsyncSession, user_id: int) -> Sequence[Payment]:
    """The account's payments, in storage order."""
    return (await session.exec(select(Payment).where(Payment.user_id == user_id))).all()


async def payment_by_invoice(session: AsyncSession, invoice_id: str) -> Payment | None:
    found = await session.exec(select(Payment).where(Payment.invoice_id == invoice_id))
    return found.first()


async def payment_by_charge(session: AsyncSession, charge_id: str) -> Payment | None:
    found = await session.exec(select(Payment).where(Payment.charge_id == charge_id))
    return found.first()


async def note_notice(session: AsyncSession, key: str, user_id: int) -> bool:
    """Note a billing notice as sent; False when one with this key was already."""
    inserted = await session.exec(
        insert_ignoring_duplicates(BillingNotice).values(key=key, user_id=user_id, sent_at=utcnow())
    )
    return bool(inserted.rowcount)


async def checkout_by_key(session: AsyncSession, key: str) -> CheckoutRecord | None:
    found = await session.exec(select(CheckoutRecord).where(CheckoutRecord.idempotency_key == key))
    return found.first()


async def checkout_by_session(session: AsyncSession, session_id: str) -> CheckoutRecord | None:
    found = await session.exec(
        select(CheckoutRecord).where(CheckoutRecord.session_id == session_id)
    )
    return found.first()


async def insert_checkout(
    session: AsyncSession, request: CheckoutRequest, opened: CheckoutSession
) -> None:
    """Record a checkout opened at the provider (one per idempotency key)."""
    await session.exec(
        insert_ignoring_duplicates(CheckoutRecord).values(
            user_id=request.user_id,
            plan_id=request.plan_id,
            idempotency_key=request.idempotency_key,
            session_id=opened.id,
            url=opened.url,
            article_slug=request.article_slug,
            created_at=utcnow(),
        )
    )


async def open_comp_grants(session: AsyncSession, user_id: int) -> Sequence[CompGrant]:
    """A member's grants not revoked (running, ended or yet to start)."""
    rows = await session.exec(
        select(CompGrant).where(CompGrant.user_id == user_id, col(CompGrant.revoked_at).is_(None))
    )
    return rows.all()


async def comp_grants_of(session: AsyncSession, user_id: int) -> Sequence[CompGrant]:
    """The account's complimentary-access grants, revoked ones included."""
    return (await session.exec(select(CompGrant).where(CompGrant.user_id == user_id))).all()
