"""Segments in the console: the push audience builder with its live size and a sample of members."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post

from api.console.forms import SEGMENT_SLOTS, body_of, form_values, nested, segment_fields
from api.console.web import CONSOLE_FORM, CONSOLE_USER, ConsoleFormDep, ConsoleUserDep, page, problem_of
from api.services import ClockDep, ProgramDep, Uow
from domain.errors import DomainError
from push import audience
from push.rules.segments import Segment
from stores.service import list_stores

SAMPLE_SIZE = 10
STORES_LISTED = 200  # the audience builder's store choices


async def store_choices(uow: Uow) -> list[Any]:
    return (await list_stores(uow, None, STORES_LISTED)).items


class ConsoleSegmentPages(Controller):
    path = "/console/segments"
    include_in_schema = False
    dependencies = CONSOLE_USER

    @get()
    async def builder(self, uow: Uow, program: ProgramDep, console_user: ConsoleUserDep) -> Response[str]:
        return page(
            "segments.html",
            console_user,
            section="segments",
            slots=SEGMENT_SLOTS,
            values={},
            stores=await store_choices(uow),
            problem=None,
            estimate=None,
            sample=[],
            zone=program.time_zone,
        )

    @post(dependencies=CONSOLE_FORM, status_code=200)
    async def estimate(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        console_user: ConsoleUserDep,
        console_form: ConsoleFormDep,
    ) -> Response[str]:
        """The size and a sample (the whole page again when the browser runs no script)."""
        context: dict[str, Any] = {"problem": None, "estimate": None, "sample": [], "zone": program.time_zone}
        status = 200
        try:
            fields, lists = segment_fields("segment")
            segment = body_of(Segment, nested(console_form, fields, lists).get("segment", {}))
            context["estimate"] = await audience.estimate(uow, segment, clock.now())
            context["sample"] = await audience.sample(uow, segment, clock.now(), SAMPLE_SIZE)
        except DomainError as error:
            context["problem"], status = problem_of(error), error.status
        if request.headers.get("hx-request") == "true":
            return page("segment_estimate.html", console_user, status=status, **context)
        return page(
            "segments.html",
            console_user,
            status=status,
            section="segments",
            slots=SEGMENT_SLOTS,
            values=form_values(console_form),
            stores=await store_choices(uow),
            **context,
        )
