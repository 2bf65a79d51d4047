"""The `broadsheet` command: serve, worker, migrate, create-admin, seed-demo, maintenance."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Annotated, NoReturn

import typer
import uvicorn

from app.core.config import ConfigError, Settings, get_settings

# uvicorn's event loop (bench.run --loop measures another): uvloop, accepting every waiting
# connection each turn when one process serves (app/core/event_loop.py). With several
# workers uvloop scales 1.83x where asyncio's loop did not (BENCHMARKS.md, issue 18).
EVENT_LOOP = "app.core.event_loop:new_event_loop"

app = typer.Typer(
    help="Broadsheet: the backend of an independent publication.", no_args_is_help=True
)


def _settings() -> Settings:
    try:
        return get_settings()
    except ConfigError as exc:
        _refuse(exc)


def _refuse(exc: ConfigError) -> NoReturn:
    typer.echo(f"broadsheet: refusing to start: {exc}", err=True)
    raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = 8000,
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="uvicorn worker processes [default: BROADSHEET_WEB_WORKERS]."),
    ] = None,
) -> None:
    """Serve the API with uvicorn (uvloop + httptools)."""
    settings = _settings()
    workers = workers or settings.web_workers
    try:
        settings.check_serving(workers)
    except ConfigError as exc:
        _refuse(exc)
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        loop=EVENT_LOOP,
        http="httptools",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        log_level="warning",
    )


@app.command()
def worker() -> None:
    """Run the background worker (scheduled publishing, newsletter delivery) until stopped."""
    from app.core.db import Database
    from app.core.worker import run_forever
    from app.jobs import all_jobs

    settings = _settings()

    async def main() -> None:
        db = Database(settings)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await run_forever(db, settings, all_jobs(), stop)
        finally:
            await db.dispose()

    asyncio.run(main())


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations up to `revision`."""
    from app.core.migrate import upgrade

    settings = _settings()
    upgrade(settings.resolved_database_url, revision)
    typer.echo(f"database migrated to {revision}")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(prompt=True, help="The admin's email.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password.")
    ],
    name: Annotated[str, typer.Option(help="Display name.")] = "Administrator",
) -> None:
    """Create an admin account, or promote and reset an existing one."""
    from app.seed import ensure_admin

    settings = _settings()
    try:
        created = asyncio.run(ensure_admin(settings, email=email, password=password, name=name))
    except ValueError as exc:
        typer.echo(f"broadsheet: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"admin {'created' if created else 'updated'}: {email}")


@app.command("seed-demo")
def seed_demo() -> None:
    """Fill the database with an original demo publication (idempotent)."""
    from app.seed import seed_demo as run_seed

    settings = _settings()
    report = asyncio.run(run_seed(settings))
    for line in report:
        typer.echo(line)


billing_app = typer.Typer(help="Billing maintenance.", no_args_is_help=True)
app.add_typer(billing_app, name="billing")


@app.command("stripe-sync")
def stripe_sync() -> None:
    """Create the Stripe product of every tier and the price of every plan under it, where
    missing (idempotent)."""
    from app.billing import tiers
    from app.billing.gateway import build_gateway
    from app.core.db import Database

    settings = _settings()

    async def main() -> list[str]:
        db = Database(settings)
        gateway = build_gateway(settings)
        try:
            async with db.session() as session:
                return await tiers.sync_catalogue(session, gateway)
        finally:
            await gateway.close()
            await db.dispose()

    for line in asyncio.run(main()) or ["no tiers"]:
        typer.echo(line)


@billing_app.command("reconcile")
def billing_reconcile() -> None:
    """Repair drift from missed webhooks: copy every subscription from Stripe, report changes."""
    from app.billing import service as billing
    from app.billing.gateway import build_gateway
    from app.core.db import Database

    settings = _settings()

    async def main() -> list[str]:
        db = Database(settings)
        gateway = build_gateway(settings)
        try:
            async with db.session() as session:
                return await billing.reconcile(session, gateway)
        finally:
            await gateway.close()
            await db.dispose()

    report = asyncio.run(main())
    for line in report:
        typer.echo(line)
    typer.echo(f"reconcile: {len(report)} change(s)")


audit_app = typer.Typer(help="Audit log maintenance.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


@audit_app.command("purge")
def audit_purge(
    before: Annotated[
        datetime,
        typer.Option(formats=["%Y-%m-%d"], help="Delete entries written before this day (UTC)."),
    ],
) -> None:
    """Delete audit entries older than a day, for retention (the purge itself is logged)."""
    from app.admin.audit_retention import purge_database
    from app.core.db import utcnow

    cutoff = before.replace(tzinfo=UTC)
    if cutoff > utcnow():
        # A typo'd year would empty the log: a retention cut-off is always in the past.
        typer.echo("broadsheet: --before must be a day in the past", err=True)
        raise typer.Exit(1)
    settings = _settings()
    deleted = asyncio.run(purge_database(settings, cutoff))
    typer.echo(f"audit purge: {deleted} entries written before {cutoff:%Y-%m-%d} deleted")


if __name__ == "__main__":
    app()
