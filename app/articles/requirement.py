"""Staff rules for what an article requires: its visibility, the tiers of a `tiers` article,
and its time rules (embargo, free window while breaking, automatic paywall by age)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from app.access.rules import Visibility
from app.articles import repository
from app.articles.errors import InvalidRequirement, UnknownTier
from app.articles.models import Article, ArticleTier
from app.billing import repository as billing
from app.core.db import as_utc, pk

# The time rules' fields, as the write bodies name them and the article stores them.
TIME_FIELDS = ("free_after", "free_until", "gated_after_days", "auto_paywall")


def set_times(article: Article, values: dict[str, object]) -> None:
    """Copy the time rules given in `values` onto the article (times in UTC)."""
    for name in TIME_FIELDS:
        if name not in values:
            continue
        value = values[name]
        if isinstance(value, datetime):
            value = as_utc(value)
        if name == "auto_paywall" and value is None:
            raise InvalidRequirement("auto_paywall is true or false.")
        setattr(article, name, value)


async def set_tiers(session: AsyncSession, article: Article, slugs: Sequence[str] | None) -> None:
    """Make the article's tiers `slugs` (None: keep them), then check they agree with its
    visibility: a `tiers` article names at least one tier, any other names none."""
    article_id = pk(article.id)
    current = await repository.tier_links(session, article_id)
    if slugs is None:
        wanted = {link.tier_id for link in current}
        if article.visibility != Visibility.tiers.value and wanted:
            # Moving away from `tiers` drops the list rather than refusing the change.
            wanted = set()
    else:
        wanted = await _tier_ids(session, slugs)
    if article.visibility == Visibility.tiers.value and not wanted:
        raise InvalidRequirement("An article for chosen tiers names at least one tier.")
    if article.visibility != Visibility.tiers.value and wanted:
        raise InvalidRequirement("Only an article of visibility `tiers` names tiers.")
    for link in current:
        if link.tier_id not in wanted:
            await session.delete(link)
    kept = {link.tier_id for link in current}
    for tier_id in sorted(wanted - kept):
        session.add(ArticleTier(article_id=article_id, tier_id=tier_id))
    await session.flush()


async def _tier_ids(session: AsyncSession, slugs: Sequence[str]) -> set[int]:
    wanted = set(slugs)
    found = {t.slug: pk(t.id) for t in await billing.tiers_by_slugs(session, sorted(wanted))}
    missing = sorted(wanted - set(found))
    if missing:
        raise UnknownTier(f"No tier has the slug {missing[0]!r}.", extra={"tiers": missing})
    return set(found.values())
