"""A shared count of staff writes, so every worker can tell when its cached answers went stale.

A staff request's session bumps the row in the same transaction as its writes (see
`accounts.deps.require_role`); each process polls it (`articles.freshness`) and clears its
response cache when it moves. The process that made the write clears its own at once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import BigInteger, Column, event
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from app.core.db import dialect_insert

_ON_COMMIT = "content_version_on_commit"


class ContentVersion(SQLModel, table=True):
    __tablename__ = "content_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


def bump_on_commit(session: Any, on_commit: Callable[[], None]) -> None:
    """Make every commit of `session` bump the shared version, then call `on_commit`."""
    sync: Session = getattr(session, "sync_session", session)
    sync.info[_ON_COMMIT] = on_commit


def _before_commit(session: Session) -> None:
    if _ON_COMMIT not in session.info:
        return
    # An upsert: a database emptied by hand (or by the test suite) has no row to update.
    upsert = dialect_insert(session, ContentVersion).values(id=1, version=1)
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=["id"], set_={"version": ContentVersion.version + 1}
        )
    )


def _after_commit(session: Session) -> None:
    on_commit = session.info.get(_ON_COMMIT)
    if on_commit is not None:
        on_commit()


def install() -> None:
    """Attach the commit listeners to every session (idempotent)."""
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
