"""Demo content and the first admin, for `make run` and `broadsheet create-admin`."""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from app.accounts import service as accounts
from app.accounts.auth_context import AuthContext
from app.accounts.emailaddr import normalise_email
from app.accounts.models import Role, User
from app.articles import repository as articles_repo
from app.articles import service as articles_service
from app.articles.markdown import Renderer, preview_rule
from app.articles.models import Status, Visibility
from app.articles.schemas import ArticleCreate
from app.billing import repository as billing_repo
from app.billing import tiers as billing_tiers
from app.billing.gateway import build_gateway
from app.billing.models import Plan
from app.core.cache import invalidate_on_commit
from app.core.config import Settings
from app.core.db import Database, pk, utcnow
from app.core.private_files import private_dir, write_private
from app.demo_content import MEMBERS, PAID, PUBLIC, body

DEMO_ADMIN_EMAIL = "admin@broadsheet.example"
DEMO_STAFF = [
    ("editor@broadsheet.example", "Maren Okafor", Role.editor),
    ("author@broadsheet.example", "Tomás Lindqvist", Role.author),
    ("author2@broadsheet.example", "Priya Raman", Role.author),
]


async def ensure_admin(settings: Settings, *, email: str, password: str, name: str) -> bool:
    """Create the admin, or promote an existing account and set its password; True if created."""
    auth = AuthContext.build(settings)
    normalised = normalise_email(email)
    accounts.check_password_rules(auth, password)
    db = Database(settings)
    try:
        async with db.session() as session:
            user = await accounts.user_by_email(session, normalised)
            if user is None:
                await accounts.create_user(
                    session,
                    auth,
                    email=normalised,
                    password=password,
                    display_name=name,
                    role=Role.admin,
                    email_verified=True,
                )
                return True
            user.role = Role.admin.value
            user.password_hash = await auth.hasher.hash(password)
            user.disabled = False
            session.add(user)
            return False
    finally:
        await db.dispose()


def _demo_password(settings: Settings) -> str:
    # Random per installation and kept under var/, so no password is ever written in git.
    path = settings.var_dir / "demo-admin-password"
    if path.exists():
        return path.read_text().strip()
    private_dir(path.parent)
    value = secrets.token_urlsafe(12)
    write_private(path, value.encode())
    return value


async def seed_demo(settings: Settings) -> list[str]:
    """Create the demo staff and publication if missing; give back lines to print."""
    auth = AuthContext.build(settings)
    password = _demo_password(settings)
    await ensure_admin(settings, email=DEMO_ADMIN_EMAIL, password=password, name="Demo Admin")
    db = Database(settings)
    try:
        async with db.session() as session:
            staff: list[User] = []
            for email, name, role in DEMO_STAFF:
                user = await accounts.user_by_email(session, email)
                if user is None:
                    user = await accounts.create_user(
                        session,
                        auth,
                        email=email,
                        password=password,
                        display_name=name,
                        role=role,
                        email_verified=True,
                    )
                staff.append(user)
            created = await _seed_articles(session, settings, staff)
            await _seed_plans(session, settings)
    finally:
        await db.dispose()
    return [
        f"demo admin: {DEMO_ADMIN_EMAIL} / {password}",
        f"demo staff ({', '.join(email for email, _, _ in DEMO_STAFF)}) share that password",
        f"demo articles created: {created}",
    ]


async def _seed_articles(session: AsyncSession, settings: Settings, staff: list[User]) -> int:
    """Create the demo articles that do not exist yet (matched by title); give back how many."""
    renderer = Renderer(settings.public_url, preview_rule(settings), settings.auto_paywall_days)
    editor = staff[0]
    created = 0
    start = utcnow() - timedelta(days=90)
    sets = ((Visibility.public, PUBLIC), (Visibility.members, MEMBERS), (Visibility.paid, PAID))
    for offset, (visibility, items) in enumerate(sets):
        for i, (title, subtitle, tags, lead) in enumerate(items):
            if await articles_repo.id_of_title(session, title) is not None:
                continue
            author = staff[(i + offset) % len(staff)]
            data = ArticleCreate(
                title=title,
                subtitle=subtitle,
                tags=tags,
                visibility=visibility,
                body_md=body(lead, i, gated=visibility is not Visibility.public),
                author_ids=[author.id] if author.id is not None else None,
            )
            article = await articles_service.create_article(session, renderer, editor, data)
            when = start + timedelta(days=i * 7 + offset * 2, hours=8)
            await articles_service.set_status(
                session, editor, article, Status.published, published_at=when
            )
            created += 1
    return created


DEMO_PLANS = [
    ("Monthly", "Every article, the full archive and the paid newsletter.", "month", 800, 0, 1),
    ("Yearly", "Two months free, billed once a year.", "year", 8000, 14, 2),
]


async def _seed_plans(session: AsyncSession, settings: Settings) -> None:
    """Create the demo plans (with prices at the configured gateway) if missing."""
    gateway = build_gateway(settings)
    existing = {plan.name for plan in await billing_repo.all_plans(session)}
    tier = await billing_tiers.default_tier(session)
    tier_id = pk(tier.id)
    for name, description, interval, amount, trial, order in DEMO_PLANS:
        if name in existing:
            continue
        plan = Plan(
            tier_id=tier_id,
            name=name,
            description=description,
            interval=interval,
            amount=amount,
            currency="usd",
            trial_days=trial,
            sort_order=order,
        )
        session.add(plan)
        await session.flush()
        await billing_tiers.sync_plan_price(session, gateway, plan, tier)
        # Plans on sale are printed in paid articles' paywall boxes.
        invalidate_on_commit(session)
