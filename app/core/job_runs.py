"""When each periodic job last finished its work, shared by every worker process.

A job that must not run more often than an interval however many processes run it (the
SQLite search index merge rewrites the whole index) reads and writes its row here instead
of keeping the time in one process.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, String
from sqlmodel import Field, SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

from app.core.db import dialect_insert, utcnow
from app.core.types import UTCDateTime


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"

    name: str = Field(sa_column=Column(String(100), primary_key=True))
    finished_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


async def finished_at(session: AsyncSession, name: str) -> datetime | None:
    """Give back when the job `name` last finished, or None if it never has."""
    run = await session.get(JobRun, name)
    return run.finished_at if run is not None else None


async def mark_finished(session: AsyncSession, name: str) -> None:
    """Record that the job `name` finished now."""
    now = utcnow()
    upsert = dialect_insert(session, JobRun).values(name=name, finished_at=now)
    await session.exec(
        upsert.on_conflict_do_update(index_elements=["name"], set_={"finished_at": now})
    )
