"""Who receives what: sign-up with double opt-in, confirmation, one-click unsubscribe,
members' choices, and suppression after hard bounces."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import links
from app.accounts import service as accounts
from app.accounts.auth_context import AuthContext
from app.accounts.models import TokenPurpose, User
from app.core import mail_outbox
from app.core.db import pk, utcnow
from app.newsletter import opt_in_mail, repository, tokens
from app.newsletter.errors import (
    InvalidUnsubscribeToken,
    NewsletterNotFound,
    NotAllowedToSubscribe,
    VerifyEmailFirst,
)
from app.newsletter.models import Newsletter, NewsletterSubscription, Subscriber, SubscriberStatus


async def newsletters_by_slug(
    session: AsyncSession, slugs: Sequence[str] | None
) -> list[Newsletter]:
    """Give back the chosen active newsletters, or the sign-up defaults when none are named."""
    found = await repository.active_newsletters(session, slugs)
    if slugs and len(found) != len(set(slugs)):
        raise NewsletterNotFound("One of the chosen newsletters does not exist.")
    return found


async def subscriber_for(
    session: AsyncSession,
    email: str,
    *,
    user: User | None = None,
    source: str = "",
    article_slug: str | None = None,
) -> Subscriber:
    """Give back the subscriber row for an address, creating it (pending) if needed."""
    found = await repository.subscriber_by_email(session, email)
    if found is None and user is not None:
        found = await repository.subscriber_of_user(session, user.id)
    if found is None:
        found = Subscriber(
            email=email,
            user_id=user.id if user else None,
            source=source,
            article_slug=article_slug,
        )
        session.add(found)
        await session.flush()
    elif user is not None and found.user_id is None:
        found.user_id = user.id
        session.add(found)
    return found


async def _follow(
    session: AsyncSession, subscriber_id: int, newsletters: Sequence[Newsletter]
) -> None:
    for newsletter in newsletters:
        link = await repository.subscription(session, subscriber_id, pk(newsletter.id))
        if link is None:
            session.add(
                NewsletterSubscription(subscriber_id=subscriber_id, newsletter_id=pk(newsletter.id))
            )
        elif not link.active:
            link.active = True
            link.subscribed_at = utcnow()
            link.unsubscribed_at = None
            session.add(link)


async def subscribe(
    session: AsyncSession,
    kit: AuthContext,
    *,
    email: str,
    newsletter_slugs: Sequence[str] | None,
    source: str,
    article_slug: str | None,
    ip: str | None,
) -> None:
    """Record an email sign-up and queue its opt-in email in the same transaction, if any.

    Anyone may type any address, so nothing changes for it until its owner follows the link:
    not the lists it receives (an unsubscribe is never undone from here), and no consent is
    recorded before then.
    """
    chosen = [
        n for n in await newsletters_by_slug(session, newsletter_slugs) if n.visibility == "public"
    ]
    if newsletter_slugs and len(chosen) != len(set(newsletter_slugs)):
        raise NotAllowedToSubscribe("Members-only newsletters are chosen from your account.")
    subscriber = await subscriber_for(session, email, source=source, article_slug=article_slug)
    if subscriber.status == SubscriberStatus.bounced.value:
        return
    followed = set(await repository.active_list_ids(session, pk(subscriber.id)))
    wanted = [n for n in chosen if pk(n.id) not in followed]
    if subscriber.status == SubscriberStatus.active.value and not wanted:
        return  # already receives every one of them
    raw = links.new_token(
        session,
        kit.settings,
        TokenPurpose.newsletter_confirm,
        email=email,
        user_id=subscriber.user_id,
        accepted_terms=True,
        consent_ip=ip,
        data={"newsletters": [pk(n.id) for n in wanted]},
    )
    message = opt_in_mail.confirm(kit.settings, email, raw, [n.name for n in wanted])
    mail_outbox.enqueue(session, kit.settings, message)


async def confirm(session: AsyncSession, kit: AuthContext, *, token: str) -> Subscriber:
    """Activate the subscriber whose opt-in link this is, with the lists it asked for, and
    record the consent given when it asked."""
    row = await links.consume(session, token, TokenPurpose.newsletter_confirm)
    subscriber = await repository.subscriber_by_email(session, row.email)
    if subscriber is None:
        raise InvalidUnsubscribeToken("This confirmation link is not valid.")
    if subscriber.status == SubscriberStatus.bounced.value:
        return subscriber
    subscriber.status = SubscriberStatus.active.value
    subscriber.confirmed_at = subscriber.confirmed_at or utcnow()
    session.add(subscriber)
    # Links from before opt-ins carried their lists kept those lists themselves.
    if row.data is not None:
        ids = [int(i) for i in row.data.get("newsletters", [])]
        chosen = await repository.newsletters_by_id(session, ids)
        await _follow(session, pk(subscriber.id), chosen)
    if row.accepted_terms:
        accounts.record_consents(
            session,
            kit,
            user_id=subscriber.user_id,
            email=row.email,
            ip=row.consent_ip,
            source="newsletter",
        )
    return subscriber


def read_token(secret: str, token: str) -> tokens.UnsubscribeToken:
    try:
        return tokens.read(secret, token)
    except tokens.BadToken as exc:
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.") from exc


async def _token_subscriber(session: AsyncSession, parsed: tokens.UnsubscribeToken) -> Subscriber:
    """The subscriber a token was made for; not one that reuses its id later (SQLite may give
    a deleted row's id to a new one, and a link lives a year)."""
    subscriber = await repository.get_subscriber(session, parsed.subscriber_id)
    # Tokens carry whole seconds: a second's grace for a token made as its row was.
    if subscriber is None or subscriber.created_at > parsed.issued_at + timedelta(seconds=1):
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    return subscriber


async def describe(session: AsyncSession, secret: str, token: str) -> tuple[str, str]:
    """Give back (masked address, newsletter name) for the confirmation page; changes nothing."""
    parsed = read_token(secret, token)
    subscriber = await _token_subscriber(session, parsed)
    newsletter = await repository.get_newsletter(session, parsed.newsletter_id)
    if newsletter is None:
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    name, _, domain = subscriber.email.partition("@")
    return f"{name[:2]}…@{domain}", newsletter.name


async def unsubscribe(session: AsyncSession, secret: str, token: str) -> None:
    """Stop the newsletter for the token's subscriber; repeating it is harmless."""
    parsed = read_token(secret, token)
    await _token_subscriber(session, parsed)
    link = await repository.subscription(session, parsed.subscriber_id, parsed.newsletter_id)
    if link is None:
        raise InvalidUnsubscribeToken("This unsubscribe link is not valid.")
    if link.active:
        link.active = False
        link.unsubscribed_at = utcnow()
        link.unsubscribed_from_issue_id = parsed.issue_id or None
        session.add(link)


async def member_choices(session: AsyncSession, user: User) -> list[str]:
    """Give back the slugs of the newsletters a member receives."""
    return await repository.member_list_slugs(session, user.id)


async def set_member_choices(
    session: AsyncSession, user: User, slugs: Sequence[str], *, paid: bool
) -> None:
    """Make a member receive exactly the named newsletters (those open to their level).

    Until the account's address is verified its choices wait (`pending`); an address that
    already receives newsletters without an account is not touched by an unverified one.
    """
    wanted = await newsletters_by_slug(session, slugs) if slugs else []
    for newsletter in wanted:
        if newsletter.visibility == "paid" and not paid:
            raise NotAllowedToSubscribe(f"{newsletter.name} is for paying subscribers.")
    if not user.email_verified:
        existing = await repository.subscriber_by_email(session, user.email)
        if existing is not None and existing.user_id != user.id:
            raise VerifyEmailFirst(
                "This address already receives newsletters: confirm it to manage them here."
            )
    subscriber = await subscriber_for(session, user.email, user=user, source="account")
    if user.email_verified and subscriber.status == SubscriberStatus.pending.value:
        # A verified account has already proven the address: no second opt-in.
        subscriber.status = SubscriberStatus.active.value
        subscriber.confirmed_at = utcnow()
        session.add(subscriber)
    subscriber_id = pk(subscriber.id)
    await _follow(session, subscriber_id, wanted)
    keep = {pk(n.id) for n in wanted}
    for link in await repository.active_subscriptions(session, subscriber_id):
        if link.newsletter_id not in keep:
            link.active = False
            link.unsubscribed_at = utcnow()
            session.add(link)
    await session.flush()


async def address_proven(session: AsyncSession, user: User) -> None:
    """The account's address was just verified (or is a new one it moved to): its newsletter
    address follows, the choices made while unverified start, and a subscription of that
    address without an account becomes the account's (its lists joined to the account's)."""
    mine = await repository.subscriber_of_user(session, user.id)
    theirs = await repository.subscriber_by_email(session, user.email)
    if theirs is not None and theirs.user_id is not None and theirs.user_id != user.id:
        return
    if mine is None:
        mine = theirs
    elif theirs is not None and theirs is not mine:
        lists = await repository.active_list_ids(session, pk(theirs.id))
        await session.delete(theirs)
        await session.flush()
        found = await repository.newsletters_by_id(session, lists)
        await _follow(session, pk(mine.id), found)
    if mine is None:
        return
    mine.user_id, mine.email = user.id, user.email
    if mine.status == SubscriberStatus.pending.value:
        mine.status = SubscriberStatus.active.value
        mine.confirmed_at = utcnow()
    session.add(mine)


async def subscription_status(session: AsyncSession, user: User) -> str | None:
    """Give back the state of the member's newsletter address (pending until verified)."""
    return await repository.subscriber_status_of_user(session, user.id)


async def suppress(session: AsyncSession, subscriber_id: int, reason: str) -> None:
    """Stop all mail to an address after a permanent failure."""
    subscriber = await repository.get_subscriber(session, subscriber_id)
    if subscriber is not None and subscriber.status != SubscriberStatus.bounced.value:
        subscriber.status = SubscriberStatus.bounced.value
        subscriber.bounced_at = utcnow()
        subscriber.bounce_reason = reason[:500]
        session.add(subscriber)


async def forget(session: AsyncSession, user: User) -> None:
    """Remove a deleted account's newsletter address: its own and any row of its address
    without an account (their choices and delivery history go with them)."""
    for subscriber in await repository.subscribers_of(session, user.id, user.email):
        await session.delete(subscriber)
