"""The marketer web console at /console: server-rendered pages over the same use cases as /v1/console."""

from __future__ import annotations

from pathlib import Path

from litestar import Router
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import HTTPException
from litestar.static_files import create_static_files_router

from api.console.campaigns import ConsoleCampaignPages
from api.console.login import ConsoleLoginController
from api.console.members import ConsoleMemberPages
from api.console.offers import ConsoleOfferPages
from api.console.overview import ConsoleOverviewPage
from api.console.segments import ConsoleSegmentPages
from api.console.stores import ConsoleStorePages
from api.console.web import console_error_page, refuse_nul_characters
from domain.errors import DomainError

STATIC = Path(__file__).parent / "static"


def console_router() -> Router:
    return Router(
        "/",
        route_handlers=[
            ConsoleLoginController,
            ConsoleOverviewPage,
            ConsoleMemberPages,
            ConsoleSegmentPages,
            ConsoleCampaignPages,
            ConsoleOfferPages,
            ConsoleStorePages,
            create_static_files_router(
                "/console/static",
                directories=[STATIC],
                cache_control=CacheControlHeader(max_age=3600),
                include_in_schema=False,
            ),
        ],
        before_request=refuse_nul_characters,
        # Every error under /console is a page: the app's JSON problem handlers are overridden here.
        exception_handlers={
            DomainError: console_error_page,
            HTTPException: console_error_page,
            Exception: console_error_page,
        },
    )
