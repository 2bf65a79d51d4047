"""The periodic jobs every worker runs, gathered from the domains in one place."""

from __future__ import annotations

from app.accounts.links import MAIL_BUILDERS
from app.articles.jobs import merge_search_index, publish_scheduled
from app.core import mail_outbox
from app.core.worker import NamedJob
from app.newsletter.jobs import deliver


def all_jobs() -> list[NamedJob]:
    """Give back the jobs a `broadsheet worker` (or the embedded worker) runs."""
    return [
        NamedJob("mail.outbox", mail_outbox.delivery_job(MAIL_BUILDERS)),
        NamedJob("articles.publish_scheduled", publish_scheduled),
        NamedJob("articles.merge_search_index", merge_search_index),
        NamedJob("newsletter.deliver", deliver),
    ]
