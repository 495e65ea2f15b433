"""The console's front page: members, points and the liability, daily purchases and check-ins, stages."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from litestar import Controller, Response, get
from litestar.params import QueryParameter

from accounts.overview import lifecycle_distribution, member_counts
from api.console import plots
from api.console.web import CONSOLE_USER, ConsoleUserDep, page
from api.services import ClockDep, ProgramDep, Uow
from domain.interactions import InteractionKind
from points.overview import points_overview, stage_distribution
from timeline.overview import daily_interactions

PERIODS = (7, 30, 90, 365)
Period = Annotated[Literal[7, 30, 90, 365], QueryParameter(description="days shown")]
DAILY_KINDS = (InteractionKind.PURCHASED, InteractionKind.CHECKED_IN, InteractionKind.APP_OPENED)


class ConsoleOverviewPage(Controller):
    path = "/console"
    include_in_schema = False
    dependencies = CONSOLE_USER

    @get()
    async def overview(
        self, uow: Uow, clock: ClockDep, program: ProgramDep, console_user: ConsoleUserDep, days: Period = 90
    ) -> Response[str]:
        now = clock.now()
        start, zone = now - timedelta(days=days), program.time_zone
        points = await points_overview(uow, program, start, now, zone, now)
        daily = await daily_interactions(uow, DAILY_KINDS, start, now, zone)
        stages = await stage_distribution(uow, program, now)
        lifecycle = await lifecycle_distribution(uow, now)
        return page(
            "overview.html",
            console_user,
            section="overview",
            days=days,
            periods=PERIODS,
            members=await member_counts(uow, now),
            points=points,
            zone=zone,
            visits_plot=plots.daily_chart(
                f"Purchases and check-ins per day, last {days} days",
                "per day",
                {
                    kind.value.replace("_", " "): [(d.day, d.count) for d in daily if d.kind is kind]
                    for kind in DAILY_KINDS[:2]
                },
            ),
            opens_plot=plots.daily_chart(
                f"App opens per day, last {days} days",
                "per day",
                {"app opened": [(d.day, d.count) for d in daily if d.kind is InteractionKind.APP_OPENED]},
            ),
            points_plot=plots.daily_chart(
                f"Points per day, last {days} days",
                "points",
                {
                    "issued": [(d.day, d.issued) for d in points.daily],
                    "redeemed": [(d.day, d.redeemed) for d in points.daily],
                    "expired": [(d.day, d.expired) for d in points.daily],
                },
            ),
            stages_plot=plots.bars("Members by points stage", [(s.stage.value, s.members) for s in stages]),
            lifecycle_plot=plots.bars(
                "Members by lifecycle stage", [(s.stage.value, s.members) for s in lifecycle]
            ),
        )
