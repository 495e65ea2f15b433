"""Push campaigns in the console: list, draft, schedule, preview, cancel, and the report with its plots."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Response, get, post
from litestar.params import FromPath, QueryParameter

from accounts.directory import search_members
from api.console import plots
from api.console.forms import (
    SEGMENT_SLOTS,
    Parser,
    body_of,
    checkbox,
    clock_time,
    form_values,
    iso_date,
    local_datetime,
    nested,
    plain_text,
    segment_fields,
    whole_number,
)
from api.console.segments import store_choices
from api.console.web import (
    CONSOLE_FORM,
    CONSOLE_USER,
    ConsoleFormDep,
    ConsoleUserDep,
    page,
    problem_of,
    see_other,
)
from api.params import Cursor
from api.services import ClockDep, ProgramDep, PushPolicyDep, Uow
from domain.errors import DomainError
from infra.charts import Interval
from push import campaigns
from push.report_days import campaign_days
from push.reports import campaign_report
from push.schemas import CampaignDraft

CAMPAIGNS_LISTED = 50
VARIANTS = ("A", "B")
# Which schedule fields each kind of schedule takes (the form shows them all; the kind picks).
SCHEDULE_KEYS = {
    "now": (),
    "at": ("at",),
    "local_time": ("date", "time"),
    "best_hour": ("window_start", "window_end"),
    "recurring": ("time", "start_date", "end_date", "weekdays"),
}
MemberQuery = Annotated[str, QueryParameter(max_length=254)]


def campaign_form_fields(time_zone: str) -> tuple[dict[str, Parser], dict[str, Parser]]:
    at_local = local_datetime(time_zone)
    fields: dict[str, Parser] = {
        "name": plain_text,
        "deep_link": plain_text,
        "schedule.kind": plain_text,
        "schedule.at": at_local,
        "schedule.date": iso_date,
        "schedule.time": clock_time,
        "schedule.window_start": at_local,
        "schedule.window_end": at_local,
        "schedule.start_date": iso_date,
        "schedule.end_date": iso_date,
        "quiet_hours.start": clock_time,
        "quiet_hours.end": clock_time,
        "respect_quiet_hours": checkbox,
        "control_percent": whole_number,
        "transactional": checkbox,
    }
    for index in range(len(VARIANTS)):
        fields |= {
            f"variants[{index}].key": plain_text,
            f"variants[{index}].title": plain_text,
            f"variants[{index}].body": plain_text,
            f"variants[{index}].weight": whole_number,
        }
    segment, lists = segment_fields("segment")
    return fields | segment, lists | {"schedule.weekdays": plain_text}


def campaign_draft(form: Any, time_zone: str) -> CampaignDraft:
    body = nested(form, *campaign_form_fields(time_zone))
    schedule = body.get("schedule", {})
    kind = schedule.get("kind", "now")
    body["schedule"] = {k: v for k, v in schedule.items() if k == "kind" or k in SCHEDULE_KEYS.get(kind, ())}
    return body_of(CampaignDraft, body)


class ConsoleCampaignPages(Controller):
    path = "/console/campaigns"
    include_in_schema = False
    dependencies = CONSOLE_USER

    @get()
    async def list_campaigns(
        self, uow: Uow, program: ProgramDep, console_user: ConsoleUserDep, cursor: Cursor = None
    ) -> Response[str]:
        listed = await campaigns.list_campaigns(uow, cursor, CAMPAIGNS_LISTED)
        return page(
            "campaigns.html", console_user, section="campaigns", listed=listed, zone=program.time_zone
        )

    @get("/new")
    async def new_campaign(
        self, uow: Uow, program: ProgramDep, console_user: ConsoleUserDep
    ) -> Response[str]:
        return await self._form(uow, console_user, program.time_zone, {}, None)

    @post(dependencies=CONSOLE_FORM)
    async def create(
        self,
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
    ) -> Response[Any]:
        try:
            draft = campaign_draft(console_form, program.time_zone)
            view = await campaigns.create_campaign(uow, console_user.profile.id, draft, clock.now())
        except DomainError as error:
            values = form_values(console_form)
            return await self._form(uow, console_user, program.time_zone, values, error)
        return see_other(f"/console/campaigns/{view.id}")

    @get("/{campaign_id:uuid}")
    async def one_campaign(
        self,
        uow: Uow,
        program: ProgramDep,
        push_policy: PushPolicyDep,
        console_user: ConsoleUserDep,
        campaign_id: FromPath[uuid.UUID],
    ) -> Response[str]:
        view = await campaigns.get_campaign(uow, campaign_id)
        report = await campaign_report(uow, campaign_id, push_policy)
        days = await campaign_days(uow, campaign_id, push_policy, program.time_zone)
        over_time = (
            plots.daily_chart(
                "Sent, opened and converted per day",
                "messages / members",
                {
                    "sent": [(d.day, d.sent) for d in days],
                    "opened": [(d.day, d.opened) for d in days],
                    "converted": [(d.day, d.converted) for d in days],
                },
            )
            if days
            else None
        )
        intervals = [Interval(g.group, g.lift.lift, g.lift.low, g.lift.high) for g in report.groups if g.lift]
        lift = (
            plots.intervals(
                "Conversion lift against control (95% interval)", "lift in conversion rate", intervals
            )
            if intervals
            else None
        )
        return page(
            "campaign.html",
            console_user,
            section="campaigns",
            campaign=view,
            report=report,
            over_time=over_time,
            lift=lift,
            zone=program.time_zone,
        )

    @post("/{campaign_id:uuid}/schedule", dependencies=CONSOLE_FORM)
    async def schedule(
        self,
        uow: Uow,
        clock: ClockDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
        campaign_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await campaigns.schedule_campaign(uow, campaign_id, clock.now())
        return see_other(f"/console/campaigns/{campaign_id}")

    @post("/{campaign_id:uuid}/cancel", dependencies=CONSOLE_FORM)
    async def cancel(
        self,
        uow: Uow,
        clock: ClockDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
        campaign_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await campaigns.cancel_campaign(uow, campaign_id, clock.now())
        return see_other(f"/console/campaigns/{campaign_id}")

    @get("/{campaign_id:uuid}/preview")
    async def preview(
        self,
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        console_user: ConsoleUserDep,
        campaign_id: FromPath[uuid.UUID],
        member: MemberQuery = "",
    ) -> Response[str]:
        """The message the member with this card number or email would get (a fragment)."""
        found = await search_members(uow, member, 1) if member.strip() else []
        if not found:
            return page("campaign_preview.html", console_user, preview=None, member=member)
        message = await campaigns.preview(uow, program, campaign_id, found[0].id, clock.now())
        return page("campaign_preview.html", console_user, preview=message, member=member, who=found[0])

    async def _form(
        self,
        uow: Uow,
        user: Any,
        time_zone: str,
        values: dict[str, list[str]],
        error: DomainError | None,
    ) -> Response[str]:
        return page(
            "campaign_new.html",
            user,
            status=error.status if error else 200,
            section="campaigns",
            slots=SEGMENT_SLOTS,
            values=values,
            stores=await store_choices(uow),
            problem=problem_of(error) if error else None,
            zone=time_zone,
        )
