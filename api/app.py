"""The litestar application factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from litestar import Litestar
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme

from api.app_accounts import AppAccountController
from api.app_offers import AppOfferController
from api.app_points import AppPointsController
from api.app_push import AppPushController
from api.app_stores import AppStoreController
from api.app_timeline import AppTimelineController
from api.console import console_router
from api.console_accounts import ConsoleAccountController
from api.console_campaigns import ConsoleCampaignController
from api.console_fraud import ConsoleFraudController
from api.console_members import ConsoleTimelineController
from api.console_offers import ConsoleOfferController
from api.console_stores import ConsoleStoreController
from api.health import healthz, readyz
from api.openapi_problems import describe_problems
from api.openapi_schemas import SCHEMA_PLUGINS
from api.openapi_viewer import swagger_viewer, viewer_assets
from api.options_allow import allow_every_method
from api.pos import PosController
from api.problems import EXCEPTION_HANDLERS
from api.request_log import request_log_middleware
from api.security_headers import add_security_headers
from api.services import DEPENDENCIES, Services
from api.strict_body import decode_body_strictly
from api.transactions import transaction_middleware
from domain.clock import Clock, SystemClock
from infra.gc_tuning import settled_for_serving
from infra.logging import configure_logging
from infra.settings import Settings, load_settings
from timeline.partitions import ensure_partitions

API_VERSION = "0.1.0"
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> Litestar:
    """Build the app; with no arguments, settings come from the environment (as in worker processes)."""
    settings = settings or load_settings()
    clock = clock or SystemClock()
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        services = Services.start(settings, clock)
        app.state.services = services
        try:
            async with services.db.engine.begin() as connection:
                await ensure_partitions(connection, clock.now())
        except Exception:
            # Partitions are upkeep (the DEFAULT partition takes every row meanwhile, and the worker
            # retries every 12 hours); serving must not depend on them.
            log.exception("could not create the timeline's coming partitions; serving anyway")
        # Build the nearest-store index now rather than on the first store search.
        async with services.db.unit_of_work() as uow:
            await services.store_catalog.current(uow)
        try:
            with settled_for_serving():
                yield
        finally:
            await services.stop()

    app = Litestar(
        route_handlers=[
            healthz,
            readyz,
            AppAccountController,
            ConsoleAccountController,
            ConsoleStoreController,
            PosController,
            AppTimelineController,
            ConsoleTimelineController,
            AppPointsController,
            AppStoreController,
            ConsoleFraudController,
            AppPushController,
            ConsoleCampaignController,
            AppOfferController,
            ConsoleOfferController,
            console_router(),
            *([viewer_assets()] if settings.openapi_enabled else []),
        ],
        dependencies=DEPENDENCIES,
        exception_handlers=EXCEPTION_HANDLERS,
        middleware=[request_log_middleware, transaction_middleware],
        before_send=[add_security_headers, allow_every_method],
        plugins=list(SCHEMA_PLUGINS),
        before_request=decode_body_strictly,
        lifespan=[lifespan],
        request_max_body_size=settings.max_request_body_bytes,
        logging_config=None,
        openapi_config=_openapi_config() if settings.openapi_enabled else None,
    )
    describe_problems(app)
    return app


def _openapi_config() -> OpenAPIConfig:
    """The OpenAPI document and its viewers at /schema (off with TSUNAGARI_OPENAPI_ENABLED=false)."""
    return OpenAPIConfig(
        title="Tsunagari",
        version=API_VERSION,
        description="Loyalty backend: companion app (/v1/app), POS (/v1/pos), console (/v1/console).",
        path="/schema",
        render_plugins=[swagger_viewer()],
        components=Components(
            security_schemes={
                "member": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                "staff": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT"),
                "pos_signature": SecurityScheme(
                    type="apiKey",
                    security_scheme_in="header",
                    name="Tsunagari-Signature",
                    description="HMAC-SHA256 signature of the request, sent with Tsunagari-Key-Id, "
                    "Tsunagari-Timestamp and Tsunagari-Nonce; see docs/pos-integration.md",
                ),
            }
        ),
    )
