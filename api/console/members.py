"""Members in the console: search by card number or email, and one member's traits, points and timeline."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, get
from litestar.params import FromPath, QueryParameter

from accounts import activity
from accounts.directory import search_members
from accounts.members import profile as member_profile
from api.console.forms import optional_choice
from api.console.web import CONSOLE_USER, ConsoleUserDep, page
from api.params import Cursor
from api.services import ClockDep, ProgramDep, Uow
from domain.interactions import InteractionKind, Phase
from points.service import points_summary
from stores.service import store_names
from timeline.schemas import TimelineEntry, TimelineFilter

TIMELINE_PAGE = 50
SEARCH_RESULTS = 20
Search = Annotated[str, QueryParameter(max_length=254)]
# Text, not the enums: the filter form's "all" option sends a blank value.
PhaseFilter = Annotated[str, QueryParameter(name="phase", max_length=32)]
KindFilter = Annotated[str, QueryParameter(name="kind", max_length=32)]


def by_phase(entries: list[TimelineEntry]) -> list[tuple[Phase, list[TimelineEntry]]]:
    """The page's interactions in customer-time order (choose, buy, use, share), newest first in each."""
    return [(p, group) for p in Phase if (group := [e for e in entries if e.phase is p])]


class ConsoleMemberPages(Controller):
    path = "/console/members"
    include_in_schema = False
    dependencies = CONSOLE_USER

    @get()
    async def search(
        self, uow: Uow, program: ProgramDep, console_user: ConsoleUserDep, q: Search = ""
    ) -> Response[str]:
        found = await search_members(uow, q, SEARCH_RESULTS) if q.strip() else []
        return page("members.html", console_user, section="members", q=q, found=found, zone=program.time_zone)

    @get("/{member_id:uuid}")
    async def one_member(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        console_user: ConsoleUserDep,
        member_id: FromPath[uuid.UUID],
        phase_filter: PhaseFilter = "",
        kind_filter: KindFilter = "",
        cursor: Cursor = None,
    ) -> Response[str]:
        now = clock.now()
        phase = optional_choice(Phase, phase_filter, "phase")
        kind = optional_choice(InteractionKind, kind_filter, "kind")
        timeline = await activity.member_timeline(
            uow,
            member_id,
            TimelineFilter(kinds=frozenset({kind}) if kind else None, phase=phase),
            cursor,
            TIMELINE_PAGE,
        )
        context: dict[str, Any] = {
            "member_id": member_id,
            "timeline": timeline,
            "groups": by_phase(timeline.items),
            "phases": list(Phase),
            "kinds": list(InteractionKind),
            "phase": phase,
            "kind": kind,
            "zone": program.time_zone,
            "stores": await store_names(uow, [e.store_id for e in timeline.items if e.store_id]),
        }
        if request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == "timeline":
            return page("member_timeline.html", console_user, **context)
        profile = await member_profile(uow, member_id)
        traits = (await activity.member_traits(uow, member_id, now)).traits
        favourite = [traits.favourite_store_id] if traits.favourite_store_id else []
        context["stores"] |= await store_names(uow, favourite)
        return page(
            "member.html",
            console_user,
            section="members",
            profile=profile,
            traits=traits,
            points=await points_summary(uow, program, member_id, now),
            **context,
        )
