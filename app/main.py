"""The application factory: settings, database, middleware, error handlers and routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.telemetry import TelemetryConfig
from fastapi_offline import FastAPIOffline

from app import __version__
from app.access.deps import reader_entitlements
from app.accounts.auth_context import AuthContext
from app.accounts.me_router import me_router
from app.accounts.router import auth_router
from app.admin import audit
from app.admin.audit_router import router as admin_audit_router
from app.admin.members_router import MAX_IMPORT_BYTES
from app.admin.members_router import router as admin_members_router
from app.admin.stats_router import router as admin_stats_router
from app.articles import derived, page_parts, search_answers
from app.articles.admin_router import router as admin_articles_router
from app.articles.admin_tags_router import router as admin_tags_router
from app.articles.feeds import router as feeds_router
from app.articles.live import NEXT_CHANGE_SQL
from app.articles.markdown import Renderer, preview_rule
from app.articles.pages import ArticleAnswers
from app.articles.router import router as articles_router
from app.billing.admin_router import router as admin_billing_router
from app.billing.gateway import build_gateway
from app.billing.local_router import router as local_billing_router
from app.billing.router import me_router as me_subscription_router
from app.billing.router import router as billing_router
from app.billing.router import webhook_router
from app.billing.tiers_router import admin_router as admin_tiers_router
from app.billing.tiers_router import router as tiers_router
from app.comments.admin_router import router as admin_comments_router
from app.comments.router import router as comments_router
from app.core import openapi
from app.core.cache import ResponseCache
from app.core.cache import version as content_version
from app.core.cache.before_routing import Early, ReaderAnswersBeforeRouting
from app.core.cache.freshness import CacheFreshness
from app.core.config import API_PREFIX, Settings, get_settings
from app.core.db import Database
from app.core.errors import install_error_handlers
from app.core.jsonutil import ORJSONResponse
from app.core.logging import configure_logging
from app.core.mail import build_mailer
from app.core.metrics import Metrics
from app.core.middleware import BodySizeLimitMiddleware, RequestContextMiddleware
from app.core.ratelimit import RateLimiter
from app.core.worker import run_forever
from app.jobs import all_jobs
from app.newsletter.admin_router import router as admin_newsletter_router
from app.newsletter.router import router as newsletter_router
from app.ops.router import router as ops_router

CORS_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "X-CSRF-Token",
    "X-Request-ID",
]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    db: Database = app.state.db
    stop = asyncio.Event()
    worker = None
    if settings.embedded_worker:
        worker = asyncio.create_task(run_forever(db, settings, all_jobs(), stop))
    freshness = CacheFreshness(db.reads, app.state.response_cache, NEXT_CHANGE_SQL)
    watcher = asyncio.create_task(freshness.run(settings.response_cache_check_seconds, stop))
    # Pages stored by an older release or for another public URL are rendered again while the
    # process serves (the old ones meanwhile); usually there are none, and it is one query.
    pages = asyncio.create_task(derived.refresh_stale(db, page_parts.publication(settings)))
    # Everything built so far (routes, models, metadata) lives as long as the process: moved
    # out of the collector's sight, it no longer makes each full collection a long pause.
    gc.freeze()
    try:
        yield
    finally:
        stop.set()
        pages.cancel()
        await asyncio.gather(pages, return_exceptions=True)
        if worker is not None:
            await worker
        await watcher
        await app.state.gateway.close()
        await db.dispose()


def _telemetry(enabled: bool) -> TelemetryConfig:
    return {"tracing": enabled, "metrics": enabled, "logs": enabled}


def create_app(settings: Settings | None = None) -> FastAPI:
    """Give back a ready Broadsheet ASGI app built from `settings` (or the environment)."""
    settings = settings or get_settings()
    configure_logging(settings.log_level, json_lines=settings.log_json)
    docs = settings.docs_enabled
    app = FastAPIOffline(
        title="Broadsheet",
        version=__version__,
        summary="The backend of an independent publication.",
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        default_response_class=ORJSONResponse,
        lifespan=_lifespan,
        telemetry=_telemetry(settings.opentelemetry),
    )
    audit.install()
    content_version.install()
    app.state.settings = settings
    app.state.db = Database(settings)
    app.state.metrics = Metrics()
    app.state.auth = AuthContext.build(settings)
    app.state.limiter = RateLimiter(settings)
    app.state.mailer = build_mailer(settings)
    app.state.renderer = Renderer(
        settings.public_url, preview_rule(settings), settings.auto_paywall_days
    )
    app.state.gateway = build_gateway(settings)
    app.state.response_cache = ResponseCache(
        settings.response_cache_seconds, max_bytes=settings.response_cache_mb * 1024 * 1024
    )

    # Added innermost first: cached reader answers closest to the routes, then the body cap,
    # request context outermost (so every answer gets its id, headers, log line and metrics).
    app.state.db.session_info[content_version.CONTENT_CHANGED] = [app.state.response_cache.clear]
    app.state.article_answers = ArticleAnswers(app.state.response_cache, app.state.db.reads)
    app.add_middleware(
        ReaderAnswersBeforeRouting,
        cache=app.state.response_cache,
        reader_of=reader_entitlements,
        article_answer=app.state.article_answers,
        early={
            f"{API_PREFIX}/search": Early(search_answers.search_before_routing),
            f"{API_PREFIX}/search/suggest": Early(
                search_answers.suggest_before_routing, per_reader=False
            ),
        },
    )
    app.add_middleware(
        BodySizeLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        larger={f"{API_PREFIX}/admin/members/import": MAX_IMPORT_BYTES},
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"],
            allow_headers=CORS_HEADERS,
            expose_headers=["ETag", "Location", "Retry-After", "X-Request-ID"],
            max_age=600,
        )
    app.add_middleware(
        RequestContextMiddleware, metrics=app.state.metrics, hsts=settings.is_production
    )
    install_error_handlers(app)
    openapi.install(app)

    # Starlette tries routes in order: the reader routes, by far the busiest, go first, then
    # Stripe's webhooks, which arrive in bursts (each router tried costs a match).
    for router in (
        articles_router,
        webhook_router,
        ops_router,
        auth_router,
        me_router,
        feeds_router,
        admin_articles_router,
        admin_tags_router,
        billing_router,
        me_subscription_router,
        admin_billing_router,
        tiers_router,
        admin_tiers_router,
        local_billing_router,
        newsletter_router,
        admin_newsletter_router,
        comments_router,
        admin_comments_router,
        admin_members_router,
        admin_stats_router,
        admin_audit_router,
    ):
        app.include_router(router)
    return app
