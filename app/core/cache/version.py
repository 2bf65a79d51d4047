"""A shared count of content changes, so every worker can tell when its cached answers went
stale.

A service that changes what readers see calls `invalidate_on_commit(session)`: the session's
commit bumps the row in the same transaction as the change, then clears this process's
caches (the callables `Database.session_info[CONTENT_CHANGED]` lists); every other process
polls the row (`freshness`) and clears its own when it moves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, event
from sqlalchemy.orm import Session
from sqlmodel import Field, SQLModel

from app.core.db import dialect_insert

# The session info key under which a database's sessions find this process's caches to clear.
CONTENT_CHANGED = "content_changed"
_BUMP = "content_version_bump"


class ContentVersion(SQLModel, table=True):
    __tablename__ = "content_version"

    id: int = Field(default=1, primary_key=True)
    version: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))


def invalidate_on_commit(session: Any) -> None:
    """Make `session`'s next commit bump the shared content version and, once committed,
    clear this process's cached answers."""
    sync: Session = getattr(session, "sync_session", session)
    sync.info[_BUMP] = True


def _before_commit(session: Session) -> None:
    if not session.info.get(_BUMP):
        return
    # An upsert: a database emptied by hand (or by the test suite) has no row to update.
    upsert = dialect_insert(session, ContentVersion).values(id=1, version=1)
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=["id"], set_={"version": ContentVersion.version + 1}
        )
    )


def _after_commit(session: Session) -> None:
    if session.info.pop(_BUMP, False):
        for clear in session.info.get(CONTENT_CHANGED, ()):
            clear()


def _after_rollback(session: Session) -> None:
    session.info.pop(_BUMP, None)


def install() -> None:
    """Attach the commit listeners to every session (idempotent)."""
    if not event.contains(Session, "before_commit", _before_commit):
        event.listen(Session, "before_commit", _before_commit)
        event.listen(Session, "after_commit", _after_commit)
        event.listen(Session, "after_rollback", _after_rollback)
