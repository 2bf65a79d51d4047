"""Demo content and the first admin, for `make run` and `broadsheet create-admin`."""

from __future__ import annotations

import secrets

from app.accounts import service as accounts
from app.accounts.emailaddr import normalise_email
from app.accounts.kit import AuthKit
from app.accounts.models import Role
from app.core.config import Settings
from app.core.db import Database

DEMO_ADMIN_EMAIL = "admin@broadsheet.example"
DEMO_STAFF = [
    ("editor@broadsheet.example", "Maren Okafor", Role.editor),
    ("author@broadsheet.example", "Tomás Lindqvist", Role.author),
    ("author2@broadsheet.example", "Priya Raman", Role.author),
]


async def ensure_admin(settings: Settings, *, email: str, password: str, name: str) -> bool:
    """Create the admin, or promote an existing account and set its password; True if created."""
    kit = AuthKit.build(settings)
    normalised = normalise_email(email)
    accounts.check_password_rules(kit, password)
    db = Database(settings)
    try:
        async with db.session() as session:
            user = await accounts.user_by_email(session, normalised)
            if user is None:
                await accounts.create_user(
                    session,
                    kit,
                    email=normalised,
                    password=password,
                    display_name=name,
                    role=Role.admin,
                    email_verified=True,
                )
                return True
            user.role = Role.admin.value
            user.password_hash = await kit.hasher.hash(password)
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
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(12)
    path.write_text(value)
    path.chmod(0o600)
    return value


async def seed_demo(settings: Settings) -> list[str]:
    """Create the demo staff and publication if missing; give back lines to print."""
    kit = AuthKit.build(settings)
    password = _demo_password(settings)
    await ensure_admin(settings, email=DEMO_ADMIN_EMAIL, password=password, name="Demo Admin")
    db = Database(settings)
    try:
        async with db.session() as session:
            for email, name, role in DEMO_STAFF:
                if await accounts.user_by_email(session, email) is None:
                    await accounts.create_user(
                        session,
                        kit,
                        email=email,
                        password=password,
                        display_name=name,
                        role=role,
                        email_verified=True,
                    )
    finally:
        await db.dispose()
    return [
        f"demo admin: {DEMO_ADMIN_EMAIL} / {password}",
        f"demo staff ({', '.join(email for email, _, _ in DEMO_STAFF)}) share that password",
    ]
