"""The console in a real browser: Playwright driving the system's Chromium (Debian's `chromium` package)
against the app served on loopback, on its own database seeded with the demo retailer and its history.

Each page visited is saved as a screenshot under `.screenshots/console/` (or `TSUNAGARI_SCREENSHOTS`);
`docs/console/` holds the set the README shows, refreshed from such a run.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import func, select

from accounts.tables import Member
from api.app import create_app
from api.console.members import TIMELINE_PAGE
from commands.demo import ADMIN_EMAIL, DEMO_PASSWORD, MARKETER_EMAIL, seed_demo
from commands.migrate import upgrade
from domain.clock import SystemClock
from domain.interactions import PHASE_OF_KIND, Phase
from infra.db import Database, UnitOfWork, create_engine
from infra.settings import Settings
from points.program import Program
from push.profiles import refresh_profiles
from tests.conftest import DatabaseFactory, serving_asgi
from timeline.tables import TimelineEvent

SCREENSHOTS = Path(os.environ.get("TSUNAGARI_SCREENSHOTS", ".screenshots/console"))


class DemoConsole(msgspec.Struct, frozen=True):
    url: str
    varied_member_email: str  # the demo member whose first timeline page spans the most phases


async def member_across_phases(uow: UnitOfWork) -> str:
    """The demo member whose latest page of timeline has a purchase and spans the most phases (then the
    busiest): chosen from the seeded history, which follows the real clock, so no fixed member is sure to
    qualify."""
    recent = (
        select(
            TimelineEvent.member_id,
            TimelineEvent.kind,
            func.row_number()
            .over(
                partition_by=TimelineEvent.member_id,
                order_by=(TimelineEvent.occurred_at.desc(), TimelineEvent.id.desc()),
            )
            .label("place"),
        )
        .where(TimelineEvent.member_id.is_not(None))
        .subquery()
    )
    rows = await uow.session.execute(
        select(Member.email, recent.c.kind)
        .join(recent, recent.c.member_id == Member.id)
        .where(recent.c.place <= TIMELINE_PAGE)
    )
    phases: dict[str, set[Phase]] = {}
    events: dict[str, int] = {}
    for email, kind in rows:
        phases.setdefault(email, set()).add(PHASE_OF_KIND[kind])
        events[email] = events.get(email, 0) + 1
    buyers = sorted(email for email, seen in phases.items() if Phase.BUY in seen)
    return max(buyers, key=lambda email: (len(phases[email]), events[email]))


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("the browser tests need Chromium: apt-get install chromium (.ci/run does)")
    return found


@pytest.fixture(scope="session")
def demo_console(settings: Settings, new_database: DatabaseFactory) -> Iterator[DemoConsole]:
    """The app on its own database holding the demo retailer as `serve` seeds it, on the real clock."""
    database_url = new_database.create("console")
    upgrade(database_url)
    demo = msgspec.structs.replace(
        settings,
        database_url=database_url,
        points_program=None,
        redis_key_prefix=f"{settings.redis_key_prefix}console:",
    )

    async def seed() -> str:
        db = Database(create_engine(database_url, pool_size=2))
        try:
            await seed_demo(db, SystemClock(), demo.key_ring("terminal_key").current)
            # What the worker does every few minutes: the audience builder counts from these profiles.
            await refresh_profiles(db, Program(), SystemClock().now())
            async with db.unit_of_work() as uow:
                return await member_across_phases(uow)
        finally:
            await db.dispose()

    varied_member_email = asyncio.run(seed())
    with serving_asgi(create_app(demo, SystemClock()), "tsunagari-console") as url:
        yield DemoConsole(url, varied_member_email)


@pytest.fixture(scope="session")
def console_url(demo_console: DemoConsole) -> str:
    return demo_console.url


@pytest.fixture(scope="module")
def browser(console_url: str) -> Iterator[Browser]:
    # Playwright's sync API runs an event loop in this thread while it is open: everything asyncio (the
    # database and the demo seed behind `console_url`) is set up before it starts, and it closes with its
    # module so the asyncio tests that follow get the thread back.
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield launched
        launched.close()


def _page(browser: Browser, console_url: str) -> Iterator[Page]:
    context = browser.new_context(base_url=console_url, viewport={"width": 1440, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def page(browser: Browser, console_url: str) -> Iterator[Page]:
    """A fresh browser context (no cookies) on the console."""
    yield from _page(browser, console_url)


def log_in(page: Page, email: str) -> None:
    page.goto("/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/console")


@pytest.fixture
def admin_page(page: Page) -> Page:
    log_in(page, ADMIN_EMAIL)
    return page


@pytest.fixture
def marketer_page(page: Page) -> Page:
    log_in(page, MARKETER_EMAIL)
    return page


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
