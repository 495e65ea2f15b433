"""Stores in the console (admins): list, create and change stores with their fences and hours, POS
terminals (a new terminal's secret is shown once), and the check-in fraud review with its flags."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath

from api.console.forms import (
    Parser,
    body_of,
    checkbox,
    decimal_number,
    form_values,
    nested,
    plain_text,
    values_of,
    whole_number,
)
from api.console.web import (
    CONSOLE_ADMIN,
    CONSOLE_FORM,
    ConsoleAdminDep,
    ConsoleFormDep,
    page,
    problem_of,
    see_other,
)
from api.services import ClockDep, ProgramDep, SettingsDep, Uow, services_of
from domain.errors import DomainError
from geofence import review
from geofence.schemas import FlagRequest
from stores import service
from stores.schemas import StoreChanges, StoreDraft, StoreView, TerminalChanges, TerminalDraft

STORES_LISTED = 200
TERMINALS_LISTED = 100
SUSPECTS_LISTED = 100
REVIEW_DAYS = 7
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{2}:\d{2})\s*-\s*(\d{2}:\d{2})\s*$")
STORE_FIELDS: dict[str, Parser] = {
    "code": plain_text,
    "name": plain_text,
    "address": plain_text,
    "latitude": decimal_number,
    "longitude": decimal_number,
    "time_zone": plain_text,
    "check_in_radius_m": whole_number,
    "status": plain_text,
    "geofence_enabled": checkbox,
}


def opening_ranges(text: str) -> list[list[str]]:
    """`10:00-14:00, 15:00-21:00` → [["10:00", "14:00"], ["15:00", "21:00"]] (the API checks the times)."""
    ranges = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RANGE.match(part)
        if match is None:
            raise ValueError("write opening hours as 10:00-21:00, several separated by commas")
        ranges.append([match.group(1), match.group(2)])
    return ranges


def polygon_points(text: str) -> list[list[float]]:
    """One `latitude, longitude` per line."""
    points = []
    for line in filter(None, (ln.strip() for ln in text.splitlines())):
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 2:
            raise ValueError("write one point per line as latitude, longitude")
        points.append([decimal_number(parts[0]), decimal_number(parts[1])])
    return points


def store_body(form: Any) -> dict[str, Any]:
    body = dict(nested(form, STORE_FIELDS | {"fence_polygon": polygon_points}))
    hours = {
        day: nested(form, {f"hours.{day}": opening_ranges}).get("hours", {}).get(day) for day in WEEKDAYS
    }
    if any(value is not None for value in hours.values()):
        body["opening_hours"] = {day: ranges for day, ranges in hours.items() if ranges is not None}
    return body


def store_values(view: StoreView) -> dict[str, list[str]]:
    values = values_of({k: getattr(view, k) for k in STORE_FIELDS})
    values["geofence_enabled"] = ["on"] if view.geofence_enabled else []
    values["fence_polygon"] = ["\n".join(f"{lat}, {lon}" for lat, lon in view.fence_polygon or [])]
    for day, ranges in (view.opening_hours or {}).items():
        values[f"hours.{day}"] = [", ".join(f"{a}-{b}" for a, b in ranges)]
    return values


class ConsoleStorePages(Controller):
    path = "/console"
    include_in_schema = False
    dependencies = CONSOLE_ADMIN

    @get("/stores")
    async def list_stores(self, uow: Uow, console_admin: ConsoleAdminDep) -> Response[str]:
        listed = await service.list_stores(uow, None, STORES_LISTED)
        return page("stores.html", console_admin, section="stores", listed=listed)

    @get("/stores/new")
    async def new_store(self, console_admin: ConsoleAdminDep) -> Response[str]:
        return self._form(
            console_admin, None, {"time_zone": ["Asia/Tokyo"], "geofence_enabled": ["on"]}, None
        )

    @post("/stores", dependencies=CONSOLE_FORM)
    async def create(
        self, uow: Uow, clock: ClockDep, console_admin: ConsoleAdminDep, console_form: ConsoleFormDep
    ) -> Response[Any]:
        try:
            view = await service.create_store(uow, clock, body_of(StoreDraft, store_body(console_form)))
        except DomainError as error:
            return self._form(console_admin, None, form_values(console_form), error)
        return see_other(f"/console/stores/{view.id}")

    @get("/stores/{store_id:uuid}")
    async def one_store(
        self, uow: Uow, console_admin: ConsoleAdminDep, store_id: FromPath[uuid.UUID]
    ) -> Response[str]:
        view = await service.get_store(uow, store_id)
        terminals = await service.list_terminals(uow, store_id, None, TERMINALS_LISTED)
        return self._form(console_admin, view, store_values(view), None, terminals=terminals.items)

    @post("/stores/{store_id:uuid}", dependencies=CONSOLE_FORM)
    async def change(
        self,
        uow: Uow,
        clock: ClockDep,
        console_admin: ConsoleAdminDep,
        console_form: ConsoleFormDep,
        store_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        view = await service.get_store(uow, store_id)
        try:
            body = store_body(console_form)
            body.pop("code", None)  # a store's code is its identity at the registers: it does not change
            await service.update_store(uow, clock, store_id, body_of(StoreChanges, body))
        except DomainError as error:
            terminals = await service.list_terminals(uow, store_id, None, TERMINALS_LISTED)
            values = form_values(console_form)
            return self._form(console_admin, view, values, error, terminals=terminals.items)
        return see_other(f"/console/stores/{store_id}")

    @post("/stores/{store_id:uuid}/terminals", dependencies=CONSOLE_FORM, status_code=201)
    async def create_terminal(
        self,
        uow: Uow,
        clock: ClockDep,
        settings: SettingsDep,
        console_admin: ConsoleAdminDep,
        console_form: ConsoleFormDep,
        store_id: FromPath[uuid.UUID],
    ) -> Response[str]:
        try:
            draft = body_of(TerminalDraft, nested(console_form, {"name": plain_text}))
            credentials = await service.create_terminal(
                uow, clock, settings.key_ring("terminal_key").current, store_id, draft
            )
        except DomainError as error:
            view = await service.get_store(uow, store_id)
            terminals = await service.list_terminals(uow, store_id, None, TERMINALS_LISTED)
            return self._form(console_admin, view, store_values(view), error, terminals=terminals.items)
        return page(
            "terminal_created.html", console_admin, status=201, section="stores", credentials=credentials
        )

    @post("/terminals/{terminal_id:uuid}", dependencies=CONSOLE_FORM)
    async def change_terminal(
        self,
        uow: Uow,
        clock: ClockDep,
        console_admin: ConsoleAdminDep,
        console_form: ConsoleFormDep,
        terminal_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        changes = body_of(TerminalChanges, nested(console_form, {"enabled": checkbox}))
        view = await service.update_terminal(uow, clock, terminal_id, changes)
        return see_other(f"/console/stores/{view.store_id}")

    @get("/fraud")
    async def fraud_review(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        console_admin: ConsoleAdminDep,
    ) -> Response[str]:
        return await self._fraud_page(request, uow, clock, program, console_admin, None)

    @post("/fraud/{member_id:uuid}/flag", dependencies=CONSOLE_FORM)
    async def flag(
        self,
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        console_admin: ConsoleAdminDep,
        console_form: ConsoleFormDep,
        member_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        try:
            reason = body_of(FlagRequest, nested(console_form, {"reason": plain_text}))
            await review.flag_member(uow, member_id, console_admin.profile.id, reason.reason, clock.now())
        except DomainError as error:
            return await self._fraud_page(request, uow, clock, program, console_admin, error)
        return see_other("/console/fraud")

    @post("/fraud/{member_id:uuid}/unflag", dependencies=CONSOLE_FORM)
    async def unflag(
        self,
        uow: Uow,
        console_admin: ConsoleAdminDep,
        console_form: ConsoleFormDep,
        member_id: FromPath[uuid.UUID],
    ) -> Response[Any]:
        await review.unflag_member(uow, member_id)
        return see_other("/console/fraud")

    @staticmethod
    async def _fraud_page(
        request: Request[Any, Any, Any],
        uow: Uow,
        clock: ClockDep,
        program: ProgramDep,
        user: Any,
        error: DomainError | None,
    ) -> Response[str]:
        now = clock.now()
        limits = services_of(request.app.state).check_in_limits
        found = await review.fraud_review(
            uow, limits, now - timedelta(days=REVIEW_DAYS), SUSPECTS_LISTED, now
        )
        return page(
            "fraud.html",
            user,
            status=error.status if error else 200,
            section="fraud",
            found=found,
            zone=program.time_zone,
            problem=problem_of(error) if error else None,
        )

    @staticmethod
    def _form(
        user: Any,
        view: StoreView | None,
        values: dict[str, list[str]],
        error: DomainError | None,
        **more: Any,
    ) -> Response[str]:
        more.setdefault("terminals", [])
        return page(
            "store_form.html",
            user,
            status=error.status if error else 200,
            section="stores",
            store=view,
            values=values,
            weekdays=WEEKDAYS,
            problem=problem_of(error) if error else None,
            **more,
        )
